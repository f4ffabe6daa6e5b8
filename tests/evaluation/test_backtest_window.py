"""The backtest window of the evaluation workflow and of `python -m pipeline backtest`, against Qlib's own reports.

Qlib's workflow backtests the test segment with the predictions of that segment, so the first day has no score
of the day before: Qlib trades nothing that day and reports it (return 0, the benchmark's return in the excess).
Given scores that start the day before, Qlib trades on them on the first day. Both cases run here through a real
DuckDB warehouse holding the fixture market of scripts/make_backtest_fixtures.py, and must give Qlib's report
(tests/fixtures/evaluation/qlib_report_first_day_<scenario> and qlib_report_<scenario>).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from evaluation.backtest import BacktestConfig
from pipeline.cli import backtest_scores, build_parser
from pipeline.settings import Settings
from tests.helpers import settings_for
from warehouse.store import Warehouse
from workflow.evaluation import backtest_window, evaluate_backtest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "evaluation"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
START = dt.date.fromisoformat(MANIFEST["start_date"])
END = dt.date.fromisoformat(MANIFEST["end_date"])
BENCH = MANIFEST["benchmark"]
BASE_SCENARIOS = sorted(n for n, s in MANIFEST["scenarios"].items() if s["market"] == "base")


@pytest.fixture(scope="module")
def scores() -> pl.DataFrame:
    return pl.read_parquet(FIXTURES / "scores.parquet")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The fixture market (base variant) as a warehouse: bars, calendar and labels."""
    wh = Warehouse(tmp_path_factory.mktemp("window") / "wh.duckdb")
    wh.ensure_schema()
    bars = pl.read_parquet(FIXTURES / "bars_base.parquet").with_columns(pl.lit(None, pl.Float64).alias("vwap"))
    wh.replace("bars", bars.select(wh.columns("bars")))
    wh.replace("calendar", bars.select("date").unique().sort("date"))
    wh.replace("labels", pl.read_parquet(FIXTURES / "labels.parquet"), key=("instrument", "date"))
    return wh


def _config(name: str) -> BacktestConfig:
    scenario = MANIFEST["scenarios"][name]
    return BacktestConfig(**scenario["strategy"], account=scenario["account"])


def _qlib(report: str) -> pl.DataFrame:
    return pl.read_parquet(FIXTURES / f"{report}.parquet")


def _assert_report(daily: pl.DataFrame, qlib: pl.DataFrame) -> None:
    assert daily["date"].to_list() == qlib["date"].to_list()
    assert daily["n_holdings"].to_list() == qlib["n_holdings"].to_list()
    for column in ("return", "cost", "turnover", "bench"):
        np.testing.assert_allclose(daily[column], qlib[column], rtol=0, atol=1e-13, err_msg=column)
    np.testing.assert_allclose(daily["account"], qlib["account"], rtol=1e-12, err_msg="account")


def _assert_metrics(metrics: dict, expected: dict) -> None:
    for series, values in expected.items():
        for key in ("annualized_return", "information_ratio", "max_drawdown", "mean", "std"):
            assert metrics[series][key] == pytest.approx(values[key], rel=1e-9, abs=1e-12), (series, key)


def test_window_defaults_to_the_scores_dates_and_config_dates_win(scores: pl.DataFrame) -> None:
    first_day = scores.filter(pl.col("date").is_between(START, END))
    assert backtest_window(first_day, BacktestConfig()) == (START, END)
    assert backtest_window(scores, BacktestConfig(), (START, END)) == (START, END)
    later = dt.date(2021, 2, 1)
    assert backtest_window(scores, BacktestConfig(start_date=later), (START, END)) == (later, END)


@pytest.mark.parametrize("name", BASE_SCENARIOS)
def test_workflow_test_segment_scores_match_qlib(warehouse: Warehouse, scores: pl.DataFrame, name: str) -> None:
    """The evaluation assets' case: the test segment's scores; the report runs from its first to its last day."""
    segment = scores.filter(pl.col("date").is_between(START, END))
    result = evaluate_backtest(warehouse, segment, BENCH, _config(name), (START, END))
    _assert_report(result.daily, _qlib(f"qlib_report_first_day_{name}"))
    _assert_metrics(result.metrics, MANIFEST["first_day"][name]["metrics"])
    assert (
        result.daily["return"][0] == 0.0 and result.daily["excess_return_without_cost"][0] == -result.daily["bench"][0]
    )
    # without a window the scores' own dates are the window: the same report
    again = evaluate_backtest(warehouse, segment, BENCH, _config(name))
    assert again.daily.equals(result.daily)


@pytest.mark.parametrize("name", BASE_SCENARIOS)
def test_workflow_scores_from_the_day_before_match_qlib(warehouse: Warehouse, scores: pl.DataFrame, name: str) -> None:
    """Scores that start before the window: the first day trades on the previous day's scores, as in Qlib."""
    result = evaluate_backtest(warehouse, scores, BENCH, _config(name), (START, END))
    _assert_report(result.daily, _qlib(f"qlib_report_{name}"))
    _assert_metrics(result.metrics, MANIFEST["scenarios"][name]["metrics"])
    assert result.daily["turnover"][0] > 0


def _cli(warehouse: Warehouse, tmp_path: Path, scores: pl.DataFrame, extra: list[str]) -> dict:
    path = tmp_path / "scores.parquet"
    scores.write_parquet(path)
    strategy = MANIFEST["scenarios"]["default"]["strategy"]
    args = build_parser().parse_args(
        ["backtest", "--scores", str(path), "--benchmark", BENCH, "--topk", str(strategy["topk"])]
        + ["--n-drop", str(strategy["n_drop"]), "--account", str(MANIFEST["scenarios"]["default"]["account"])]
        + extra
    )
    return backtest_scores(args, _settings(warehouse))


def _settings(warehouse: Warehouse) -> Settings:
    settings = settings_for(warehouse.path.parent)
    assert Path(settings.warehouse).resolve() == warehouse.path
    return settings


def test_cli_backtest_follows_qlib_in_both_conventions(
    warehouse: Warehouse, scores: pl.DataFrame, tmp_path: Path
) -> None:
    """The command rejects a name the data lacks (the fixture's SH999999), so it runs on the other names and must
    give what the Qlib-checked workflow gives over the same window."""
    known = scores.filter(pl.col("instrument") != "SH999999")
    config = _config("default")
    # a file with the test segment's scores only: the window is the file's dates, first day included
    segment = known.filter(pl.col("date").is_between(START, END))
    expected = evaluate_backtest(warehouse, segment, BENCH, config, (START, END))
    assert expected.daily["date"][0] == START and expected.daily["date"][-1] == END
    _assert_metrics(_cli(warehouse, tmp_path, segment, []), expected.metrics)
    # a longer file with --start/--end: the first day trades on the scores of the day before --start
    expected = evaluate_backtest(warehouse, known, BENCH, config, (START, END))
    assert expected.daily["turnover"][0] > 0
    summary = _cli(warehouse, tmp_path, known, ["--start", str(START), "--end", str(END)])
    _assert_metrics(summary, expected.metrics)
