"""Our backtest and signal analysis against Qlib 0.9's own output on a small random market.

The fixture (tests/fixtures/evaluation/) comes from scripts/make_backtest_fixtures.py: 31 instruments x 80 days
with limit-up/down days, suspensions as missing rows and as forward-filled volume-0 rows, factor jumps, a score
day missing, scores for a name the market does not know, and four strategy/exchange settings, each backtested
over [start_date, end_date] with scores that start the day before (``qlib_report_<scenario>``) and with the
scores of that window only, Qlib's workflow, whose first day trades nothing (``qlib_report_first_day_<scenario>``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from evaluation.backtest import BacktestConfig, run_backtest
from evaluation.market import benchmark_returns_from_bars
from evaluation.signal import signal_analysis

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "evaluation"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
START = dt.date.fromisoformat(MANIFEST["start_date"])
END = dt.date.fromisoformat(MANIFEST["end_date"])


@pytest.fixture(scope="module")
def scores() -> pl.DataFrame:
    return pl.read_parquet(FIXTURES / "scores.parquet")


def _config(scenario: dict) -> BacktestConfig:
    return BacktestConfig(
        **scenario["strategy"],
        account=scenario["account"],
        deal_price=scenario["exchange"].get("deal_price", "close"),
        start_date=START,
        end_date=END,
    )


def _assert_same_as_qlib(daily: pl.DataFrame, metrics: dict, report: str, expected_metrics: dict) -> None:
    qlib = pl.read_parquet(FIXTURES / f"{report}.parquet")
    assert daily["date"].to_list() == qlib["date"].to_list()
    assert daily["n_holdings"].to_list() == qlib["n_holdings"].to_list()
    for column in ("account", "value", "cash", "total_cost", "total_turnover"):
        np.testing.assert_allclose(daily[column], qlib[column], rtol=1e-12, atol=1e-6, err_msg=column)
    for column in ("return", "cost", "turnover", "bench"):
        np.testing.assert_allclose(daily[column], qlib[column], rtol=0, atol=1e-13, err_msg=column)
    for series, expected in expected_metrics.items():
        for key, value in expected.items():
            assert metrics[series][key] == pytest.approx(value, rel=1e-9, abs=1e-12), (series, key)


def _test_segment(scores: pl.DataFrame) -> pl.DataFrame:
    """Qlib's workflow: the predictions of the backtest window itself, none of the day before."""
    return scores.filter(pl.col("date").is_between(START, END))


@pytest.mark.parametrize("name", sorted(MANIFEST["scenarios"]))
def test_backtest_matches_qlib(name: str, scores: pl.DataFrame) -> None:
    """Scores from the day before the window: the first day trades on them."""
    scenario = MANIFEST["scenarios"][name]
    bars = pl.read_parquet(FIXTURES / f"bars_{scenario['market']}.parquet")
    result = run_backtest(scores, bars, benchmark_returns_from_bars(bars, MANIFEST["benchmark"]), _config(scenario))
    _assert_same_as_qlib(result.daily, result.metrics, f"qlib_report_{name}", scenario["metrics"])


@pytest.mark.parametrize("name", sorted(MANIFEST["first_day"]))
def test_first_day_without_previous_scores_matches_qlib(name: str, scores: pl.DataFrame) -> None:
    """Scores that start on the window's first day: that day trades nothing and is in the report."""
    scenario = MANIFEST["scenarios"][name]
    bars = pl.read_parquet(FIXTURES / f"bars_{scenario['market']}.parquet")
    bench = benchmark_returns_from_bars(bars, MANIFEST["benchmark"])
    result = run_backtest(_test_segment(scores), bars, bench, _config(scenario))
    _assert_same_as_qlib(
        result.daily, result.metrics, f"qlib_report_first_day_{name}", MANIFEST["first_day"][name]["metrics"]
    )
    first = result.daily.row(0, named=True)
    assert first["date"] == START and first["n_holdings"] == 0
    assert first["return"] == first["cost"] == first["turnover"] == 0.0
    assert first["bench"] != 0.0 and first["excess_return_with_cost"] == -first["bench"]
    assert result.trades["date"].min() > START


def test_the_fixture_exercises_the_hard_cases(scores: pl.DataFrame) -> None:
    """Guard against a regenerated fixture that no longer contains the cases the parity test relies on."""
    bars = pl.read_parquet(FIXTURES / "bars_base.parquet")
    assert bars.filter(pl.col("change") >= np.float32(0.095)).height > 20
    assert bars.filter(pl.col("change") <= -np.float32(0.095)).height > 20
    assert bars.filter(pl.col("volume") == 0).height > 20  # forward-filled suspensions
    assert bars.filter(pl.col("factor") != 1.0).height > 0
    days = scores["date"].unique()
    assert days.len() < bars["date"].n_unique()  # a day without scores
    assert "SH999999" in scores["instrument"].to_list()  # a name the market does not know
    # "default": blocked sells push the book above topk; "stress": many minimum fees
    default = pl.read_parquet(FIXTURES / "qlib_report_default.parquet")
    assert default["n_holdings"].max() > MANIFEST["scenarios"]["default"]["strategy"]["topk"]


def test_signal_analysis_matches_qlib(scores: pl.DataFrame) -> None:
    labels = pl.read_parquet(FIXTURES / "labels.parquet")
    qlib = pl.read_parquet(FIXTURES / "qlib_signal_daily.parquet")
    daily, metrics = signal_analysis(scores.filter(pl.col("date").is_between(START, END)), labels)
    assert daily["date"].to_list() == qlib["date"].to_list()
    np.testing.assert_allclose(daily["ic"], qlib["ic"], atol=1e-12)
    np.testing.assert_allclose(daily["rank_ic"], qlib["rank_ic"], atol=1e-12)
    # Qlib averages the float32 labels in float32
    np.testing.assert_allclose(daily["long_short"], qlib["long_short"], atol=1e-7)
    np.testing.assert_allclose(daily["long_avg"], qlib["long_avg"], atol=1e-7)
    for key, value in MANIFEST["signal_metrics"].items():
        tolerance = 1e-12 if "ic" in key else 1e-5
        assert metrics[key] == pytest.approx(value, rel=tolerance, abs=tolerance), key
