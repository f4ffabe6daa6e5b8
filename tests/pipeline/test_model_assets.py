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
from tests.helpers import WHOLE_PIPELINE, materialize_selection, range_tags, settings_for
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
        meta = result.asset_materializations_for_node(f"model_{row['model']}")[0].metadata
        for key in ("device", "parameters", "epochs_run", "best_epoch", "wall_time_s", "samples_per_s", "loss_curves"):
            assert key in meta, key
        assert meta["model_version"].value == row["model_version"]
    # Every prediction names the artifact that produced it.
    joined = wh.query(
        "select count(*) as n, count(m.model) as matched "
        "from predictions p left join models m using (model, model_version)"
    ).row(0, named=True)
    assert joined["n"] > 0 and joined["n"] == joined["matched"]
    board = wh.query("select * from leaderboard")
    assert sorted(board["model"].to_list()) == sorted(MODELS)
    for col in ("ic", "icir", "rank_ic", "rank_icir", "ann_return_with_cost", "ir_with_cost", "mdd_with_cost"):
        assert board[col].is_finite().all(), col
    metrics = wh.query("select distinct variant from backtest_metrics order by 1")["variant"].to_list()
    assert metrics == ["excess_return_with_cost", "excess_return_without_cost"]
    assert wh.query("select count(distinct model) from ic_daily").item() == len(MODELS)


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
    with pytest.raises(Exception, match=r"train.*2015-01-01"):
        dg.materialize(
            assets=list(defs.assets or []),
            selection=dg.AssetSelection.keys("handler_alpha158_20"),
            resources=resources,
        )
