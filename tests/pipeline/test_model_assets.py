"""Models, predictions and evaluation through real Dagster materializations (smoke profile, tiny market)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.artifacts import load_artifact
from models.config import model_config_names
from models.scoring import predict
from processing.handler import FittedHandler
from tests.helpers import WHOLE_PIPELINE, embedded_png, materialize_selection, range_tags, settings_for
from warehouse.store import Warehouse
from workflow.training import build_model_samples

MODELS = list(model_config_names())


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("models")
    settings = settings_for(tmp, profile="smoke")
    result = materialize_selection(settings, WHOLE_PIPELINE, tags=range_tags("2020-01-02", "2020-12-31"))
    assert result.success
    return settings, result, Warehouse(settings.warehouse)


def test_every_model_is_trained_registered_scored_and_evaluated(full_run) -> None:
    settings, result, wh = full_run
    models = wh.query("select * from models order by model")
    assert models["model"].to_list() == sorted(MODELS)
    for row in models.iter_rows(named=True):
        assert Path(row["path"]).is_dir() and row["device"] == "cpu" and row["epochs_run"] == 1
        meta = {k: v.value for k, v in _metadata(result, f"model_{row['model']}").items()}
        # The materialization reports the registered row.
        assert meta["model_version"] == row["model_version"] and meta["artifact"] == row["path"]
        assert meta["device"] == row["device"] and meta["handler_version"] == row["handler_version"]
        assert (meta["parameters"], meta["epochs_run"], meta["best_epoch"]) == (
            row["n_parameters"],
            row["epochs_run"],
            row["best_epoch"],
        )
        assert meta["best_valid_score"] == row["best_valid_score"]
        assert meta["wall_time_s"] == round(row["wall_time_s"], 2)
        assert meta["samples_per_s"] == round(row["samples_per_s"], 1)
        assert meta["segments"] == ", ".join(
            f"{n} {row[f'{n}_start']}..{row[f'{n}_end']}" for n in ("train", "valid", "test")
        )
        assert embedded_png(meta["loss_curves"])
    # Every prediction names the artifact that produced it.
    joined = wh.query(
        "select count(*) as n, count(m.model) as matched "
        "from predictions p left join models m using (model, model_version)"
    ).row(0, named=True)
    assert joined["n"] > 0 and joined["n"] == joined["matched"]
    # Only out-of-sample days are scored: every version's first scored day comes after its validation segment,
    # and the partition run's metadata says where scoring started.
    first = wh.query(
        "select p.model, min(p.date) as first, any_value(m.valid_end) as valid_end "
        "from predictions p join models m using (model, model_version) group by p.model"
    )
    assert first.height == len(MODELS)
    for row in first.iter_rows(named=True):
        assert row["first"] > row["valid_end"], row
        meta = _metadata(result, f"predictions_{row['model']}")
        assert dt.date.fromisoformat(meta["scored_from"].value) > row["valid_end"]
    board = wh.query("select * from leaderboard")
    assert sorted(board["model"].to_list()) == sorted(MODELS)
    for col in ("ic", "icir", "rank_ic", "rank_icir", "ann_return_with_cost", "ir_with_cost", "mdd_with_cost"):
        assert board[col].is_finite().all(), col
    # The leaderboard names each graph model's base version and where HIST's concepts came from.
    rows = {r["model"]: r for r in board.iter_rows(named=True)}
    versions = {r["model"]: r["model_version"] for r in models.iter_rows(named=True)}
    for graph, base in (("gats", "lstm"), ("hist", "lstm"), ("igmtf", "lstm"), ("gats_ts", "lstm_ts")):
        assert rows[graph]["base_model_version"] == versions[base]
    source = wh.query("select source from concept_source").item()
    assert rows["hist"]["notes"] == f"concepts: {source}" and "sector" in source
    assert rows["lstm"]["base_model_version"] is None and rows["lstm"]["notes"] is None
    metrics = wh.query("select distinct variant from backtest_metrics order by 1")["variant"].to_list()
    assert metrics == ["excess_return_with_cost", "excess_return_without_cost"]
    assert wh.query("select count(distinct model) from ic_daily").item() == len(MODELS)


def _metadata(result, node: str) -> dict:
    (first, *_) = result.asset_materializations_for_node(node)
    return first.metadata


def test_scoring_and_evaluation_metadata_describe_the_stored_rows(full_run) -> None:
    _, result, wh = full_run
    for model in MODELS:
        registered = wh.query("select * from models where model = ?", [model]).row(0, named=True)
        predictions = {k: v.value for k, v in _metadata(result, f"predictions_{model}").items()}
        stored = wh.query("select count(*) from predictions where model = ? and model_version = ?",
                          [model, registered["model_version"]]).item()  # fmt: skip
        assert predictions["model_version"] == registered["model_version"]
        assert predictions["rows"] == stored > 0
        assert predictions["date_range"] == "2020-01-02..2020-12-31"  # the run's partition range

        window = (registered["test_start"], registered["test_end"])
        signal = {k: v.value for k, v in _metadata(result, f"signal_{model}").items()}
        metrics = wh.query("select * from signal_metrics where model = ?", [model]).row(0, named=True)
        assert (metrics["start_date"], metrics["end_date"]) == window
        assert signal["date_range"] == f"{window[0]}..{window[1]}"
        assert signal["days"] == wh.query("select count(*) from ic_daily where model = ?", [model]).item()
        assert signal["model_versions"] == 1
        for key in ("ic", "icir", "rank_ic", "rank_icir"):
            assert signal[key] == pytest.approx(metrics[key]), key
        assert embedded_png(signal["cumulative_ic"])

        backtest = {k: v.value for k, v in _metadata(result, f"backtest_{model}").items()}
        days = wh.query("select min(date) lo, max(date) hi, count(*) n from backtest_daily where model = ?", [model])
        lo, hi, n = days.row(0)
        assert backtest["days"] == n and backtest["date_range"] == f"{lo}..{hi}" == f"{window[0]}..{window[1]}"
        risk = wh.query("select * from backtest_metrics where model = ? and variant = 'excess_return_with_cost'",
                        [model]).row(0, named=True)  # fmt: skip
        assert backtest["excess_return_with_cost/information_ratio"] == pytest.approx(risk["information_ratio"])
        assert embedded_png(backtest["cumulative_excess_return"]) and embedded_png(backtest["drawdown"])

    for handler in ("alpha360_rnn", "alpha158_20"):
        dataset = {k: v.value for k, v in _metadata(result, f"handler_{handler}").items()}
        fit = wh.query("select * from handlers where handler = ?", [handler]).row(0, named=True)
        assert dataset["handler_version"] == fit["handler_version"]
        assert dataset["fit_window"] == f"{fit['fit_start']}..{fit['fit_end']}"
        assert dataset["rows_in_fit_window"] == fit["n_rows"] > 0
    board = _metadata(result, "leaderboard")
    assert board["models"].value == len(MODELS) == wh.query("select count(*) from leaderboard").item()


def test_restored_artifact_scores_equal_stored_predictions(full_run) -> None:
    _, _, wh = full_run
    row = wh.query("select * from models where model = 'lstm_ts'").row(0, named=True)
    model, config, extra = load_artifact(row["path"], device="cpu")
    fitted = FittedHandler.from_state(extra["handler_state"])
    day = dt.date(2020, 11, 10)
    samples = build_model_samples(wh, config, fitted, {"test": (day, day)})["test"]
    again = predict(model, samples, device="cpu", batch_size=256)
    stored = wh.query(
        "select instrument, score from predictions where model = 'lstm_ts' and date = ? order by instrument", [day]
    )
    mine = pl.DataFrame({"instrument": samples.instruments.astype(str), "score": again.astype(np.float64)}).sort(
        "instrument"
    )
    assert stored["instrument"].to_list() == mine["instrument"].to_list()
    np.testing.assert_allclose(stored["score"].to_numpy(), mine["score"].to_numpy(), rtol=0, atol=1e-6)


def test_empty_segment_names_segment_and_dates(tmp_path: Path, full_run) -> None:
    settings, _, _ = full_run
    import dagster as dg

    from pipeline.definitions import build_definitions

    defs = build_definitions(settings)
    resources = dict(defs.resources)
    from pipeline.resources import SegmentsResource

    resources["segments"] = SegmentsResource(
        train_start="2015-01-01",
        train_end="2015-12-31",
        valid_start="2020-09-01",
        valid_end="2020-10-31",
        test_start="2020-11-01",
        test_end="2020-12-31",
    )
    with pytest.raises(ValueError, match=r"train.*2015-01-01\.\.2015-12-31 has no alpha158 features"):
        dg.materialize(
            assets=list(defs.assets or []),
            selection=dg.AssetSelection.keys("handler_alpha158_20"),
            resources=resources,
        )
