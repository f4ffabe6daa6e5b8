"""The backtest on markets small enough to work out by hand (topk 2, n_drop 1, 10,000 of cash)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from evaluation.backtest import BacktestConfig, run_backtest
from evaluation.market import benchmark_returns_from_bars

D0, D1, D2, D3 = (dt.date(2024, 1, d) for d in (2, 3, 4, 5))


def bars(rows: list[tuple[str, dt.date, float, float, float]]) -> pl.DataFrame:
    """(instrument, date, close, change, factor) rows."""
    frame = pl.DataFrame(rows, schema=["instrument", "date", "close", "change", "factor"], orient="row")
    return frame.with_columns(pl.lit(1e6).alias("volume"))


def scores(rows: dict[dt.date, dict[str, float]]) -> pl.DataFrame:
    flat = [(inst, day, s) for day, per in rows.items() for inst, s in per.items()]
    return pl.DataFrame(flat, schema=["instrument", "date", "score"], orient="row")


CONFIG = BacktestConfig(topk=2, n_drop=1, account=10_000.0, start_date=D1, end_date=D2)


def test_amounts_rounding_min_cost_and_report() -> None:
    market = bars(
        [
            ("A", D0, 9.0, 0.0, 1.0), ("A", D1, 10.0, 0.0, 1.0), ("A", D2, 11.0, 0.0, 1.0),
            ("B", D0, 19.0, 0.0, 1.0), ("B", D1, 20.0, 0.0, 1.0), ("B", D2, 22.0, 0.0, 1.0),
            ("C", D0, 29.0, 0.0, 1.0), ("C", D1, 30.0, 0.0, 1.0), ("C", D2, 30.0, 0.0, 1.0),
        ]
    )  # fmt: skip
    signal = scores({D0: {"A": 3.0, "B": 2.0, "C": 1.0}, D1: {"C": 5.0, "A": 3.0, "B": 2.0}})
    result = run_backtest(signal, market, None, CONFIG)

    # D1: each of A, B gets 10000 * 0.95 / 2 = 4750 -> 475 and 237.5 shares -> 400 and 200 (lots of 100);
    # 4000 each, fee max(4000 * 0.0005, 5) = 5 (the minimum)
    # D2: C ranks first, B last of {C, A, B}: sell B (200 * 22 = 4400, fee 6.6), buy C with
    # (1990 + 4393.4) * 0.95 = 6064.23 -> 202 shares -> 200 -> 6000, fee 5
    trades = result.trades.sort("date", "side", "instrument")
    assert trades.select("date", "instrument", "side", "amount", "value", "cost").rows() == [
        (D1, "A", "buy", 400.0, 4000.0, 5.0),
        (D1, "B", "buy", 200.0, 4000.0, 5.0),
        (D2, "C", "buy", 200.0, 6000.0, 5.0),
        (D2, "B", "sell", 200.0, 4400.0, pytest.approx(6.6)),
    ]
    day1, day2 = result.daily.rows(named=True)
    assert day1["cash"] == pytest.approx(1990.0)
    assert day1["account"] == pytest.approx(9990.0)
    assert day1["return"] == pytest.approx(0.0, abs=1e-15)  # gross of fees, prices unchanged
    assert day1["cost"] == pytest.approx(10 / 10_000)
    assert day1["turnover"] == pytest.approx(8000 / 10_000)
    assert day2["cash"] == pytest.approx(378.4)
    assert day2["account"] == pytest.approx(378.4 + 400 * 11 + 200 * 30)
    assert day2["return"] == pytest.approx((10778.4 - 9990 + 11.6) / 9990)
    assert day2["cost"] == pytest.approx(11.6 / 9990)
    assert day2["turnover"] == pytest.approx(10400 / 9990)
    assert result.daily["n_holdings"].to_list() == [2, 2]
    assert result.daily["excess_return_with_cost"].to_list() == pytest.approx(
        [r - c for r, c in zip(result.daily["return"], result.daily["cost"], strict=True)]
    )


def test_limit_up_buy_limit_down_sell_and_suspension() -> None:
    market = bars(
        [
            ("A", D0, 9.0, 0.0, 1.0), ("A", D1, 9.9, 0.1, 1.0), ("A", D2, 10.0, 0.01, 1.0), ("A", D3, 11.0, 0.1, 1.0),
            ("B", D0, 20.0, 0.0, 2.0), ("B", D1, 20.0, 0.0, 2.0), ("B", D2, 18.0, -0.1, 2.0),
            ("C", D0, 25.0, 0.0, 1.0), ("C", D1, 25.0, 0.0, 1.0), ("C", D2, 25.0, 0.0, 1.0), ("C", D3, 26.0, 0.04, 1.0),
        ]
    )  # fmt: skip
    signal = scores(
        {
            D0: {"A": 3.0, "B": 2.0, "C": 1.0},
            D1: {"A": 3.0, "C": 2.5, "B": 2.0},
            D2: {"A": 3.0, "C": 2.0, "B": -1.0},
        }
    )
    config = BacktestConfig(topk=2, n_drop=1, account=10_000.0, start_date=D1, end_date=D3)
    result = run_backtest(signal, market, None, config)
    trades = result.trades.sort("date", "instrument")
    # D1: A is at limit-up (change 0.1 >= 0.095) and is skipped; its half of the budget stays in cash.
    #     B: 4750 / 20 = 237.5 adjusted shares = 475 real (factor 2) -> 400 real = 200 adjusted.
    # D2: B is last of {A, C, B} but at limit-down: it cannot be sold. Both A and C are bought with
    #     5995 * 0.95 / 2 = 2847.625 each: A 284 -> 200 shares, C 113 -> 100 shares.
    # D3: B has no bar (suspended): ranked last again, it cannot be sold and keeps its last price 18.
    assert trades.select("date", "instrument", "side", "amount", "value").rows() == [
        (D1, "B", "buy", 200.0, 4000.0),
        (D2, "A", "buy", 200.0, 2000.0),
        (D2, "C", "buy", 100.0, 2500.0),
    ]
    d1, d2, d3 = result.daily.rows(named=True)
    assert d1["cash"] == pytest.approx(10_000 - 4005)
    assert d2["cash"] == pytest.approx(5995 - 2005 - 2505)
    assert d2["n_holdings"] == 3  # the blocked sell leaves more than topk names
    assert d2["value"] == pytest.approx(200 * 18 + 200 * 10 + 100 * 25)
    assert d3["value"] == pytest.approx(200 * 18 + 200 * 11 + 100 * 26)
    assert d3["turnover"] == 0.0
    held_d3 = result.positions.filter(pl.col("date") == D3).sort("instrument")
    assert held_d3.select("instrument", "price", "count").rows() == [("A", 11.0, 2), ("B", 18.0, 3), ("C", 26.0, 2)]


def test_forbid_all_trade_at_limit_false_allows_selling_at_limit_up() -> None:
    market = bars(
        [
            ("A", D0, 10.0, 0.0, 1.0), ("A", D1, 10.0, 0.0, 1.0), ("A", D2, 11.0, 0.1, 1.0),
            ("B", D0, 10.0, 0.0, 1.0), ("B", D1, 10.0, 0.0, 1.0), ("B", D2, 10.0, 0.0, 1.0),
            ("C", D0, 10.0, 0.0, 1.0), ("C", D1, 10.0, 0.0, 1.0), ("C", D2, 10.0, 0.0, 1.0),
        ]
    )  # fmt: skip
    signal = scores({D0: {"A": 3.0, "B": 2.0, "C": 1.0}, D1: {"C": 5.0, "B": 4.0, "A": 1.0}})
    blocked = run_backtest(signal, market, None, CONFIG)
    allowed = run_backtest(signal, market, None, replace(CONFIG, forbid_all_trade_at_limit=False))
    assert blocked.trades.filter(pl.col("side") == "sell").is_empty()
    assert allowed.trades.filter(pl.col("side") == "sell")["instrument"].to_list() == ["A"]


def test_hold_thresh_and_day_without_scores() -> None:
    market = bars([(i, d, 10.0, 0.0, 1.0) for i in "ABC" for d in (D0, D1, D2, D3)])
    signal = scores({D0: {"A": 3.0, "B": 2.0, "C": 1.0}, D2: {"C": 5.0, "B": 4.0, "A": 1.0}})
    # D2 has no orders (no scores dated D1); on D3 A has been held 2 days
    result = run_backtest(signal, market, None, replace(CONFIG, end_date=D3, hold_thresh=3))
    assert result.trades.filter(pl.col("date") == D2).is_empty()
    assert result.trades.filter(pl.col("side") == "sell").is_empty()  # count 2 < hold_thresh 3
    result = run_backtest(signal, market, None, replace(CONFIG, end_date=D3, hold_thresh=2))
    assert result.trades.filter(pl.col("side") == "sell")["instrument"].to_list() == ["A"]


def test_default_dates_follow_qlib_record_rule() -> None:
    market = bars([(i, d, 10.0, 0.0, 1.0) for i in "AB" for d in (D0, D1, D2, D3)])
    signal = scores({d: {"A": 1.0, "B": 2.0} for d in (D0, D1, D2, D3)})
    result = run_backtest(signal, market, None, BacktestConfig(topk=1, n_drop=1))
    # from the first score date to the trading day before the last score date
    assert result.daily["date"].to_list() == [D0, D1, D2]
    assert result.daily["turnover"][0] == 0.0  # no scores before the first day


def test_benchmark_returns_from_bars_float32_and_gaps() -> None:
    days = [dt.date(2024, 1, d) for d in (2, 3, 4, 5, 8)]
    market = bars(
        [("IDX", days[0], 100.0, 0.0, 1.0), ("IDX", days[1], 101.0, 0.0, 1.0), ("IDX", days[3], 99.0, 0.0, 1.0),
         ("IDX", days[4], 100.0, 0.0, 1.0), ("X", days[2], 1.0, 0.0, 1.0)]
    )  # fmt: skip
    bench = benchmark_returns_from_bars(market, "idx")
    expected = np.float32(101.0) / np.float32(100.0) - np.float32(1)
    assert bench["date"].to_list() == days
    assert bench["bench"].to_list() == [0.0, float(expected), 0.0, 0.0, float(np.float32(100) / np.float32(99) - 1)]
    with pytest.raises(ValueError, match="benchmark instrument 'NOPE'"):
        benchmark_returns_from_bars(market, "NOPE")


def test_report_uses_benchmark_frame() -> None:
    market = bars([(i, d, 10.0, 0.0, 1.0) for i in "AB" for d in (D0, D1, D2)])
    signal = scores({D0: {"A": 1.0, "B": 2.0}, D1: {"A": 1.0, "B": 2.0}})
    bench = pl.DataFrame({"date": [D1, D2], "bench": [0.01, float("nan")]})
    result = run_backtest(signal, market, bench, CONFIG)
    assert result.daily["bench"].to_list() == pytest.approx([0.01, 0.0])
    assert result.daily["excess_return_without_cost"].to_list() == pytest.approx(
        [result.daily["return"][0] - 0.01, result.daily["return"][1]]
    )
