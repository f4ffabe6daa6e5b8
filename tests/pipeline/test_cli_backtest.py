"""`python -m pipeline backtest --scores FILE` on the warehouse, and its errors for bad score files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pipeline.cli import main
from tests.helpers import materialize_selection, range_tags, settings_for
from warehouse.store import Warehouse

RISK = {"mean", "std", "annualized_return", "information_ratio", "max_drawdown"}


@pytest.fixture(scope="module")
def warehouse_env(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("cli")
    settings = settings_for(tmp)
    assert materialize_selection(
        settings, "group:bars or key:labels", tags=range_tags("2020-01-02", "2020-12-31")
    ).success
    bars = Warehouse(settings.warehouse).query(
        "select instrument, date, close from bars where instrument <> 'SYNIDX' order by instrument, date"
    )
    # A 5-day reversal score, a plausible outside signal.
    scores = (
        bars.with_columns((-(pl.col("close") / pl.col("close").shift(5).over("instrument") - 1)).alias("score"))
        .drop_nulls("score")
        .select("instrument", "date", "score")
    )
    return settings, tmp, scores


def _run(monkeypatch, settings, args: list[str], capsys) -> tuple[int, str, str]:
    monkeypatch.setenv("PIPELINE_WAREHOUSE", settings.warehouse)
    monkeypatch.setenv("PIPELINE_SOURCE", settings.source)
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_backtest_prints_qlib_keys(warehouse_env, monkeypatch, capsys) -> None:
    settings, tmp, scores = warehouse_env
    path = tmp / "scores.parquet"
    scores.write_parquet(path)
    code, out, _ = _run(
        monkeypatch,
        settings,
        ["backtest", "--scores", str(path), "--start", "2020-03-02", "--topk", "5", "--n-drop", "1"],
        capsys,
    )
    assert code == 0
    result = json.loads(out)
    assert {"ic", "icir", "rank_ic", "rank_icir"} <= set(result)
    for variant in ("excess_return_without_cost", "excess_return_with_cost"):
        assert set(result[variant]) == RISK
    assert (
        result["excess_return_with_cost"]["annualized_return"]
        < result["excess_return_without_cost"]["annualized_return"]
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.drop("score"), "score"),
        (lambda s: pl.concat([s, s.head(1)]), "share an (instrument, date) key"),
        (lambda s: s.with_columns(pl.lit("NOPE").alias("instrument")), "NOPE"),
        (lambda s: s.with_columns(pl.col("date").dt.offset_by("3y")), "not trading days"),
    ],
)
def test_bad_score_files_get_clear_errors(warehouse_env, monkeypatch, capsys, mutate, message: str) -> None:
    settings, tmp, scores = warehouse_env
    path = tmp / "bad.parquet"
    mutate(scores).write_parquet(path)
    code, _, err = _run(monkeypatch, settings, ["backtest", "--scores", str(path)], capsys)
    assert code == 2
    assert "bad.parquet" in err and message in err


def test_missing_score_file(warehouse_env, monkeypatch, capsys, tmp_path: Path) -> None:
    settings, _, _ = warehouse_env
    code, _, err = _run(monkeypatch, settings, ["backtest", "--scores", str(tmp_path / "none.parquet")], capsys)
    assert code == 2 and "does not exist" in err
