"""The training and scoring stages for the graph models: the base network's artifact is loaded and checked, the
base and its version are recorded (artifact and table `models`, added to an older table once), HIST takes its
concepts, IGMTF rebuilds its memory from the recorded train segment when scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.config import get_model_config
from processing.concepts import Concepts
from warehouse.feature_store import trading_days
from warehouse.ingest import ingest_bars, sync_calendar, sync_membership
from warehouse.sources import open_source
from warehouse.store import Warehouse
from workflow.features import build_feature_window
from workflow.handlers import fit_and_store_handler
from workflow.scoring import score_window
from workflow.segments import default_segments
from workflow.training import train_and_store

SOURCE = "synthetic:seed=3,instruments=12,start=2020-01-01,end=2020-12-31,core_size=6"
TINY = {"hidden_size": 8, "num_layers": 1, "n_epochs": 1, "early_stop": 1, "eval_train": False, "seed": 0}


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory):
    root = Path(tmp_path_factory.mktemp("zoo_stages"))
    wh = Warehouse(root / "wh.duckdb")
    source = open_source(SOURCE)
    cal = source.calendar()
    sync_calendar(source, wh)
    sync_membership(source, wh, None, source.default_benchmark())
    ingest_bars(source, wh, cal[0], cal[-1], None, source.default_benchmark())
    for feature_set in ("alpha360", "label"):
        build_feature_window(wh, feature_set, cal[0], cal[-1])
    segments = default_segments(trading_days(wh))
    fit_and_store_handler(wh, "alpha360_rnn", segments)
    return wh, root, segments


def _concepts(wh: Warehouse) -> Concepts:
    names = np.array(sorted(wh.query("select distinct instrument from features_alpha360")["instrument"].to_list()))
    matrix = np.zeros((len(names), 3), dtype=np.float32)
    matrix[np.arange(len(names)), np.arange(len(names)) % 3] = 1
    return Concepts(names, matrix, ("a", "b", "c"), "test sectors")


def test_graph_models_start_from_the_registered_base(market) -> None:
    wh, root, segments = market
    gats = get_model_config("gats", **TINY)
    with pytest.raises(ValueError, match="starts from the trained 'lstm'.*materialize model_lstm first"):
        train_and_store(wh, root, "gats", gats, segments, device="cpu")

    lstm = train_and_store(wh, root, "lstm", get_model_config("lstm", **TINY), segments, device="cpu")
    assert lstm.base_model is None and lstm.base_model_version is None
    trained = train_and_store(wh, root, "gats", gats, segments, device="cpu")
    assert (trained.base_model, trained.base_model_version) == ("lstm", lstm.version)
    row = wh.query("select * from models where model = 'gats'").row(0, named=True)
    assert (row["base_model"], row["base_model_version"]) == ("lstm", lstm.version)
    assert wh.query("select base_model from models where model = 'lstm'").item() is None
    extra = json.loads((trained.path / "extra.json").read_text())
    assert (extra["base_model"], extra["base_model_version"]) == ("lstm", lstm.version)
    assert {"rnn.weight_ih_l0", "fc_out.weight"} <= set(extra["base_entries"])

    with pytest.raises(ValueError, match=r"'gats' cannot start from 'lstm' .*hidden_size is 16 in 'gats' but 8"):
        train_and_store(wh, root, "gats", gats.replace(hidden_size=16), segments, device="cpu")
    with pytest.raises(ValueError, match="num_layers is 2 in 'gats' but 1 in 'lstm'"):
        train_and_store(wh, root, "gats", gats.replace(num_layers=2), segments, device="cpu")

    report = score_window(wh, "gats", segments.test[0], segments.test[1], device="cpu")
    assert report.rows > 0


def test_hist_needs_concepts_and_igmtf_rebuilds_its_memory_when_scoring(market) -> None:
    wh, root, segments = market
    train_and_store(wh, root, "lstm", get_model_config("lstm", **TINY), segments, device="cpu")
    hist = get_model_config("hist", **TINY)
    with pytest.raises(ValueError, match="'hist' \\(HIST\\) needs the stock-to-concept matrix"):
        train_and_store(wh, root, "hist", hist, segments, device="cpu")
    concepts = _concepts(wh)
    trained = train_and_store(wh, root, "hist", hist, segments, device="cpu", concepts=concepts)
    assert json.loads((trained.path / "extra.json").read_text())["concepts"] == "test sectors"
    start, end = segments.test
    with pytest.raises(ValueError, match="needs the stock-to-concept matrix"):
        score_window(wh, "hist", start, end, device="cpu")
    assert score_window(wh, "hist", start, end, device="cpu", concepts=concepts).rows > 0

    train_and_store(wh, root, "igmtf", get_model_config("igmtf", **TINY), segments, device="cpu")
    report = score_window(wh, "igmtf", start, end, device="cpu")
    assert report.rows > 0 and report.phases["memory"] > 0
    scores = wh.query("select score from predictions where model = 'igmtf'")["score"].to_numpy()
    assert np.isfinite(scores).all() and scores.std() > 0


def test_an_older_models_table_gets_the_base_columns(tmp_path: Path, market) -> None:
    wh_old, _, segments = market
    wh = Warehouse(tmp_path / "old.duckdb")
    # The table as the pipeline wrote it before the zoo, with one row.
    wh.execute(
        "create table models (model varchar not null, model_version varchar not null, trained_at timestamp, "
        "path varchar, device varchar, handler varchar, handler_version varchar, train_start date, train_end date, "
        "valid_start date, valid_end date, test_start date, test_end date, best_epoch integer, epochs_run integer, "
        "best_valid_score double, wall_time_s double, samples_per_s double, n_parameters bigint, config json, "
        "primary key (model, model_version))"
    )
    wh.execute("insert into models (model, model_version, trained_at) values ('gru', 'v0', now())")
    for table in ("calendar", "instruments", "features_alpha360", "labels", "handlers"):
        wh.replace(table, wh_old.query(f"select * from {table}"))
    train_and_store(wh, tmp_path, "lstm", get_model_config("lstm", **TINY), segments, device="cpu")
    trained = train_and_store(wh, tmp_path, "gats", get_model_config("gats", **TINY), segments, device="cpu")
    rows = wh.query("select model, base_model, base_model_version from models order by model").rows()
    assert rows == [("gats", "lstm", trained.base_model_version), ("gru", None, None), ("lstm", None, None)]
