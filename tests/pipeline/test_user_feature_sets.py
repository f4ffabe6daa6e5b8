"""A PIPELINE_FEATURES set end to end: an asset and table of its own, lookback from its expressions, a real
in-process Dagster materialization, a handler and a model on it, and a bad file failing the load."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from features import catalog
from features.user_sets import FeatureFileError
from tests.helpers import materialize_selection, range_tags, settings_for
from warehouse.store import Warehouse

SETS = """\
mine:
  MOM20: Ref($close, 20)/$close - 1
  HL: ($high-$low)/$close
  VOLR5: Mean($volume, 5)/($volume+1e-12)
  NOVWAP: $vwap/$close
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("user_sets")
    path = tmp / "sets.yaml"
    path.write_text(SETS)
    settings = settings_for(tmp, features=str(path))
    result = materialize_selection(
        settings, "group:bars or key:features_mine", tags=range_tags("2020-01-02", "2020-12-31")
    )
    assert result.success
    yield settings, Warehouse(settings.warehouse), result
    catalog.activate(None)


def test_user_set_is_an_asset_with_derived_mapping(built) -> None:
    from pipeline.automation import partitioned_update
    from pipeline.definitions import build_definitions

    settings, _, _ = built
    defs = build_definitions(settings)
    graph = defs.get_repository_def().asset_graph
    node = graph.get(dg.AssetKey("features_mine"))
    assert node.is_partitioned and node.group_name == "features"
    mapping = node.partition_mappings[dg.AssetKey("bars")]
    assert isinstance(mapping, dg.TimeWindowPartitionMapping)
    assert (mapping.start_offset, mapping.end_offset) == (-30, 0)  # lookback 20 trading days -> 30 weekdays
    assert "features_mine" in partitioned_update()
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == dg.AssetKey("features_mine")}
    assert checks == {"no_unexpected_all_null_columns", "null_and_inf_fractions"}


def test_materialized_values(built) -> None:
    _, wh, result = built
    frame = wh.query("select * from features_mine order by instrument, date")
    assert frame.columns == ["instrument", "date", "MOM20", "HL", "VOLR5", "NOVWAP"]
    bars = wh.query("select instrument, date, high, low, close from bars")
    joined = frame.join(bars, on=["instrument", "date"])
    expected = (joined["high"].cast(pl.Float32) - joined["low"].cast(pl.Float32)) / joined["close"].cast(pl.Float32)
    assert (joined["HL"] - expected).abs().max() < 1e-6
    # MOM20 has a value from an instrument's 21st row on.
    first = frame.filter(pl.col("instrument") == frame["instrument"][0])
    assert first["MOM20"][:20].null_count() == 20 and first["MOM20"][20:].null_count() < first.height - 20
    evals = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path == ["features_mine"]}
    assert evals["no_unexpected_all_null_columns"].passed  # NOVWAP reads vwap, present in the synthetic bars
    assert evals["null_and_inf_fractions"].passed


def test_daily_partition_equals_the_range_run(built) -> None:
    settings, wh, _ = built
    before = wh.query("select * from features_mine order by instrument, date")
    assert materialize_selection(settings, "key:features_mine", partition_key="2020-09-15").success
    assert wh.query("select * from features_mine order by instrument, date").equals(before)


def test_handler_and_model_on_a_user_set(built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from models.config import ModelConfig
    from processing import config as pconfig
    from warehouse.feature_store import trading_days
    from workflow.handlers import fit_and_store_handler
    from workflow.segments import default_segments
    from workflow.training import train_and_store

    _, wh, _ = built
    handler = pconfig.HandlerConfig(
        name="mine_h",
        feature_set="mine",
        infer=(pconfig.ProcessorSpec("RobustZScoreNorm", {"fields_group": "feature", "clip_outlier": True}),
               pconfig.ProcessorSpec("Fillna", {"fields_group": "feature"})),
        learn=(pconfig.ProcessorSpec("DropnaLabel"), pconfig.ProcessorSpec("CSRankNorm", {"fields_group": "label"})),
    )  # fmt: skip
    monkeypatch.setitem(pconfig.HANDLER_CONFIGS, "mine_h", handler)
    assert pconfig.get_handler_config("mine_h").feature_set == "mine"
    # Labels for the handler: the built-in label table, computed over the same range.
    materialize_selection(built[0], "key:labels", tags=range_tags("2020-01-02", "2020-12-31"))
    segments = default_segments(trading_days(wh))
    fit = fit_and_store_handler(wh, "mine_h", segments)
    in_window = wh.query(
        "select count(*) from features_mine f where date between ? and ? and exists (select 1 from instruments m "
        "where m.instrument = f.instrument and f.date between m.start_date and m.end_date)",
        list(segments.fit),
    ).item()
    # The fit window's rows of the user's table that the processors are fitted on: the universe members'.
    assert fit.rows == in_window > 0
    every_row = wh.query("select count(*) from features_mine where date between ? and ?", list(segments.fit)).item()
    assert in_window < every_row  # the benchmark instrument (and non-members) have rows too
    stored = wh.query("select feature_set from handlers where handler = 'mine_h'").item()
    assert stored == "mine"
    config = ModelConfig(
        name="gru_mine", model="gru", layout="sequence", d_feat=3, step_len=5, handler="mine_h",
        hidden_size=8, num_layers=1, n_epochs=1, batch_size=64, max_batches_per_epoch=2, seed=0,
    )  # fmt: skip
    handler_cols = ("MOM20", "HL", "VOLR5")
    monkeypatch.setitem(
        pconfig.HANDLER_CONFIGS,
        "mine_h",
        pconfig.HandlerConfig(**{**handler.to_dict(), "feature_columns": handler_cols}),
    )
    fit_and_store_handler(wh, "mine_h", segments)
    trained = train_and_store(wh, tmp_path, "gru_mine", config, segments, device="cpu")
    assert trained.n_train > 0 and trained.result.epochs_run == 1


def test_bad_file_fails_the_load_and_writes_nothing(tmp_path: Path) -> None:
    from pipeline.definitions import build_definitions

    path = tmp_path / "bad.yaml"
    path.write_text("mine:\n  OK: $close\n  BAD: Mean($close, 5) + Foo($open)\n")
    settings = settings_for(tmp_path, features=str(path))
    try:
        with pytest.raises(FeatureFileError) as info:
            build_definitions(settings)
    finally:
        catalog.activate(None)
    message = str(info.value)
    assert str(path) in message and "'mine'" in message and "'BAD'" in message and "Foo" in message
    assert not Path(settings.warehouse).exists()


def test_checks_flag_all_null_and_inf_columns_without_failing_the_run(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    # NAN: log of -1 is NaN on every row although close is present; INF: a division by zero on every row.
    path.write_text("odd:\n  OK: $close/Ref($close, 1)\n  NAN: Log($close-$close-1)\n  INF: $close/($close-$close)\n")
    settings = settings_for(tmp_path, features=str(path))
    try:
        result = materialize_selection(
            settings, "group:bars or key:features_odd", tags=range_tags("2020-03-02", "2020-04-30")
        )
    finally:
        catalog.activate(None)
    assert result.success  # the checks report, they do not crash the run
    evals = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path == ["features_odd"]}
    all_null = evals["no_unexpected_all_null_columns"]
    assert not all_null.passed and all_null.severity == dg.AssetCheckSeverity.ERROR
    assert "NAN" in all_null.description and "OK" not in all_null.description
    stats = evals["null_and_inf_fractions"]
    assert not stats.passed and stats.severity == dg.AssetCheckSeverity.WARN
    assert "INF" in stats.description and stats.metadata["inf_values"].value > 0
    assert "| INF |" in stats.metadata["per_column"].value
