"""Pieces of the backtest pinned on small cases: selection, order execution, rounding, tradability, config."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from evaluation.backtest import BacktestConfig
from evaluation.ledger import execute_buys, execute_sells
from evaluation.market import build_panel, round_to_trade_unit
from evaluation.topk_dropout import rank_by_score, select

NAN = float("nan")


def test_rank_by_score_ties_by_instrument_and_nan_last() -> None:
    score = np.array([1.0, NAN, 2.0, 1.0, NAN, 3.0])
    assert rank_by_score(np.arange(6), score).tolist() == [5, 2, 0, 3, 1, 4]


def test_select_drops_the_worst_held_and_buys_the_best_new() -> None:
    score = np.array([5.0, 1.0, 4.0, 3.0, 0.5])
    held = np.array([False, True, False, True, False])
    everyone = np.ones(5, dtype=bool)
    choice = select(score, everyone, held, everyone, topk=2, n_drop=1, only_tradable=False)
    # today = top 1 new (n_drop + topk - held = 1): index 0; comb = [0, 3, 1] -> drop 1
    assert choice.sell.tolist() == [1]
    assert choice.buy.tolist() == [0]


def test_select_keeps_a_held_name_better_than_the_new_ones() -> None:
    score = np.array([0.1, 5.0, 4.0])
    held = np.array([False, True, True])
    everyone = np.ones(3, dtype=bool)
    choice = select(score, everyone, held, everyone, topk=2, n_drop=1, only_tradable=False)
    assert choice.sell.size == 0 and choice.buy.size == 0


def test_select_negative_slices_like_qlib() -> None:
    # 4 held with topk 2, n_drop 1: Qlib slices today = candidates[:-1] and buy = today[:len(sell) - 2]
    score = np.array([9.0, 8.0, 7.0, 1.0, 2.0, 3.0, 4.0])
    held = np.array([False, False, False, True, True, True, True])
    everyone = np.ones(7, dtype=bool)
    choice = select(score, everyone, held, everyone, topk=2, n_drop=1, only_tradable=False)
    # today = [0, 1, 2][:-1] = [0, 1]; comb = [0, 1, 6, 5, 4, 3] -> sell 3; buy = today[:1 + 2 - 4] = [0]
    assert choice.sell.tolist() == [3]
    assert choice.buy.tolist() == [0]


def test_select_only_tradable_skips_blocked_names() -> None:
    score = np.array([5.0, 4.0, 1.0, 0.5])
    held = np.array([False, False, True, True])
    tradable = np.array([False, True, True, False])
    everyone = np.ones(4, dtype=bool)
    plain = select(score, everyone, held, tradable, topk=2, n_drop=1, only_tradable=False)
    assert plain.buy.tolist() == [0] and plain.sell.tolist() == [3]
    only = select(score, everyone, held, tradable, topk=2, n_drop=1, only_tradable=True)
    # the first tradable new name is 1; the last tradable name of comb [1, 2, 3] is 2
    assert only.buy.tolist() == [1] and only.sell.tolist() == [2]


def test_unscored_names_are_not_candidates_but_present_nan_scores_are() -> None:
    score = np.array([NAN, NAN, 1.0])
    present = np.array([True, False, True])
    nobody = np.zeros(3, dtype=bool)
    choice = select(score, present, nobody, ~nobody, topk=3, n_drop=1, only_tradable=False)
    assert choice.buy.tolist() == [2, 0]


def test_round_to_trade_unit_uses_real_shares() -> None:
    amount = np.array([475.0, 237.5, 99.99999999])
    factor = np.array([1.0, 2.0, 1.0])
    assert round_to_trade_unit(amount, factor, 100).tolist() == [400.0, 200.0, 100.0]


def test_sells_add_proceeds_net_of_fees() -> None:
    fills = execute_sells(100.0, np.array([100.0, 1000.0]), np.array([10.0, 10.0]), 0.0015, 5.0)
    assert fills.cost.tolist() == [5.0, 15.0]
    assert fills.cash == pytest.approx(100.0 + 995.0 + 9985.0)


def test_a_sale_that_cannot_pay_its_fee_is_cancelled() -> None:
    fills = execute_sells(0.0, np.array([0.3, 100.0]), np.array([10.0, 10.0]), 0.0015, 5.0)
    assert fills.deal.tolist() == [0.0, 100.0]
    assert fills.cost.tolist() == [0.0, 5.0]
    assert fills.cash == pytest.approx(995.0)


def test_buys_are_cut_to_the_cash_left() -> None:
    def unit(amount: np.ndarray, factor: np.ndarray) -> np.ndarray:
        return round_to_trade_unit(amount, factor, 1)

    fills = execute_buys(
        1500.0, np.array([50.0, 100.0, 10.0]), np.array([10.0, 10.0, 10.0]), np.ones(3), 0.0005, 5.0, unit
    )
    # 500 + 5 spent; 995 left < 1000 + 5: at most (995 - 5) / 10 = 99 shares; then 0 cash < 5 fee: cancelled
    assert fills.deal.tolist() == [50.0, 99.0, 0.0]
    assert fills.cost.tolist() == [5.0, 5.0, 0.0]
    assert fills.cash == pytest.approx(0.0)


def test_panel_tradability_rules() -> None:
    d = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    bars = pl.DataFrame(
        {
            "instrument": ["A", "A", "B", "C"],
            "date": [d[0], d[1], d[0], d[0]],
            "close": [10.0, 10.0, 10.0, NAN],
            "open": [NAN, 9.0, 0.0, 1.0],
            "change": [float(np.float32(0.095)), -0.095, 0.0949, 0.2],
            "factor": [1.0, 1.0, 1.0, NAN],
        }
    )
    panel = build_panel(bars, d, np.array(["A", "B", "C"], dtype=object), "open", 0.095)
    assert panel.suspended.tolist() == [[False, False, True], [False, True, True]]
    assert panel.limit_buy.tolist() == [[True, False, True], [False, True, True]]
    assert panel.limit_sell.tolist() == [[False, False, True], [True, True, True]]
    # open missing or <= 1e-8: the close is the deal price
    assert panel.deal_price[0, :2].tolist() == [10.0, 10.0] and panel.deal_price[1, 0] == 9.0
    assert panel.round_to_unit  # C's missing factor is on a suspended row
    with pytest.raises(ValueError, match="deal_price 'vwap'"):
        build_panel(bars, d, np.array(["A"], dtype=object), "vwap", 0.095)
    with pytest.raises(ValueError, match=r"lacks columns \['change'\]"):
        build_panel(bars.drop("change"), d, np.array(["A"], dtype=object), "close", 0.095)


def test_a_missing_factor_on_a_traded_row_switches_rounding_off() -> None:
    d = [dt.date(2024, 1, 2)]
    bars = pl.DataFrame({"instrument": ["A"], "date": d, "close": [10.0], "change": [0.0], "factor": [None]})
    assert not build_panel(bars, d, np.array(["A"], dtype=object)).round_to_unit


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("topk", 0, "topk"),
        ("n_drop", 0, "n_drop"),
        ("topk", 2.5, "topk"),
        ("risk_degree", 1.5, "risk_degree"),
        ("account", -1.0, "account"),
        ("open_cost", -0.1, "open_cost"),
        ("limit_threshold", 2.0, "limit_threshold"),
        ("trade_unit", 0, "trade_unit"),
        ("only_tradable", 1, "only_tradable"),
        ("start_date", "2020-01-01", "start_date"),
    ],
)
def test_config_errors_name_the_parameter(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=rf"BacktestConfig\.{message}="):
        BacktestConfig(**{field: value})


def test_config_end_before_start_names_both() -> None:
    with pytest.raises(ValueError, match=r"BacktestConfig.end_date=.*is before start_date 2020-02-01"):
        BacktestConfig(start_date=dt.date(2020, 2, 1), end_date=dt.date(2020, 1, 1))
