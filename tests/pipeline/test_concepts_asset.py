"""The `concepts` asset through real Dagster materializations: the synthetic sectors, a Qlib directory's
concepts.csv (strict and lenient), concepts derived over the train segment (default and rolling), its metadata
equal to the stored rows, and its place in the daily jobs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pipeline.definitions import build_definitions
from pipeline.metadata import frame_markdown
from pipeline.resources import ROLLING_SEGMENTS_TAG
from tests.helpers import SMALL_SOURCE, materialize_selection, range_tags, settings_for
from warehouse.sources import SyntheticSource, open_source
from warehouse.sources.qlib_bin import write_qlib_dir
from warehouse.sources.synthetic import BENCHMARK, SyntheticSpec
from warehouse.store import Warehouse
from workflow.concepts import concepts_version, fit_and_store_concepts, load_concepts
from workflow.segments import default_segments

RANGE = range_tags("2020-01-02", "2020-12-31")
UPSTREAM = "group:bars or key:concepts"


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (first,) = result.asset_materializations_for_node("concepts")
    return {k: v.value for k, v in first.metadata.items()}


def _assert_metadata_is_the_stored_rows(meta: dict, wh: Warehouse) -> None:
    stored = wh.query("select * from concept_source").row(0, named=True)
    sizes = wh.query(
        "select concept, count(*) as instruments from concepts group by concept order by instruments desc, concept"
    )
    members = wh.query("select distinct instrument from instruments")["instrument"]
    covered = wh.query("select distinct instrument from concepts")["instrument"]
    assert meta["source"] == stored["source"] and meta["origin"] == stored["origin"]
    assert meta["concepts_version"] == stored["concepts_version"] == concepts_version(load_concepts(wh))
    assert meta["concepts"] == stored["n_concepts"] == sizes.height
    assert meta["instruments_covered"] == stored["n_instruments"] == covered.is_in(members.to_list()).sum()
    assert meta["universe_instruments"] == members.len()
    assert meta["instruments_uncovered"] == members.len() - meta["instruments_covered"]
    assert meta["concept_sizes"] == frame_markdown(sizes)


def test_synthetic_sectors_are_stored_and_reported(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    result = materialize_selection(settings, UPSTREAM, tags=RANGE)
    assert result.success
    wh = Warehouse(settings.warehouse)
    meta = _metadata(result)
    _assert_metadata_is_the_stored_rows(meta, wh)
    source = SyntheticSource(SyntheticSpec.parse(SMALL_SOURCE.split(":", 1)[1]))
    assert wh.query("select * from concepts order by instrument, concept").equals(source.concepts())
    assert meta["origin"] == "source" and meta["source"] == source.concepts_origin()
    assert meta["instruments_uncovered"] == 0 and meta["skipped_lines"] == 0
    assert meta["fit_window"].startswith("none")
    loaded = load_concepts(wh)
    assert loaded.members().equals(source.concepts()) and loaded.source == meta["source"]


def _qlib_dir(tmp_path: Path) -> Path:
    spec = SyntheticSpec.parse(SMALL_SOURCE.split(":", 1)[1])
    synth = SyntheticSource(spec)
    return write_qlib_dir(tmp_path / "q", synth.read_bars(None).bars, synth.calendar())


def test_concepts_csv_strict_failure_writes_nothing_and_lenient_lists_lines(tmp_path: Path) -> None:
    root = _qlib_dir(tmp_path)
    path = root / "concepts.csv"
    path.write_text("instrument,concept\nsyn0001,bank\nsyn0001,tech\nsyn0002,bank\nSYNIDX,index\n")
    settings = settings_for(tmp_path, source=f"qlib:{root}", benchmark=BENCHMARK)
    first = materialize_selection(settings, UPSTREAM, tags=RANGE)
    assert first.success
    wh = Warehouse(settings.warehouse)
    before = wh.query("select * from concepts order by instrument, concept")
    # The benchmark is a known instrument but not a member of the universe: left out, and counted.
    assert before.rows() == [("SYN0001", "bank"), ("SYN0001", "tech"), ("SYN0002", "bank")]
    meta = _metadata(first)
    _assert_metadata_is_the_stored_rows(meta, wh)
    assert meta["source"] == str(path) and meta["instruments_outside_universe"] == 1
    assert meta["instruments_uncovered"] == meta["universe_instruments"] - 2
    source_row = wh.query("select * from concept_source")

    path.write_text("instrument,concept\nsyn0003,energy\nNOPE,energy\n")
    failed = materialize_selection(settings, "concepts", raise_on_error=False)
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.is_step_failure]
    assert f"{path}, line 3: instrument NOPE is not an instrument of the source" in str(failure.step_failure_data)
    assert wh.query("select * from concepts order by instrument, concept").equals(before)
    assert wh.query("select * from concept_source").equals(source_row)

    lenient = settings_for(tmp_path, source=f"qlib:{root}", benchmark=BENCHMARK, on_bad_file="skip")
    result = materialize_selection(lenient, "concepts")
    assert result.success
    meta = _metadata(result)
    assert meta["skipped_lines"] == 1
    assert f"| {path}, line 3 |" in meta["skipped"] and "NOPE is not an instrument" in meta["skipped"]
    assert wh.query("select * from concepts").rows() == [("SYN0003", "energy")]
    _assert_metadata_is_the_stored_rows(meta, wh)


def test_derived_over_the_train_segment_when_the_source_has_none(tmp_path: Path) -> None:
    root = _qlib_dir(tmp_path)
    settings = settings_for(tmp_path, source=f"qlib:{root}", benchmark=BENCHMARK)
    with pytest.raises(ValueError, match="no concepts yet; materialize the concepts asset first"):
        load_concepts(Warehouse(settings.warehouse))
    result = materialize_selection(settings, UPSTREAM + " or key:labels", tags=RANGE)
    assert result.success
    wh = Warehouse(settings.warehouse)
    meta = _metadata(result)
    _assert_metadata_is_the_stored_rows(meta, wh)
    calendar = open_source(f"qlib:{root}").calendar()
    train = default_segments(calendar).train
    assert meta["origin"] == "derived" and meta["fit_window"] == f"{train[0]}..{train[1]}"
    assert meta["source"].startswith(
        f"derived: 2 clusters of daily-return correlation over the train segment {train[0]}"
    )
    assert meta["source"].endswith(f"; the source has none: {root / 'concepts.csv'} absent")
    stored = wh.query("select * from concepts order by instrument, concept")
    assert wh.query("select fit_start, fit_end from concept_source").row(0) == train

    # Every bar after the train end changed in the warehouse: the same concepts.
    later = wh.query("select * from bars where date > ?", [train[1]])
    scrambled = later.with_columns((pl.col("close") * (1 + 0.3 * pl.int_range(pl.len()).mod(7))).alias("close"))
    wh.replace("bars", scrambled, date_range=(train[1] + dt.timedelta(days=1), later["date"].max()))
    assert not wh.query("select * from bars where date > ? order by instrument, date", [train[1]])["close"].equals(
        later.sort("instrument", "date")["close"]
    )
    again = materialize_selection(settings, "concepts")
    assert again.success and _metadata(again)["concepts_version"] == meta["concepts_version"]
    assert wh.query("select * from concepts order by instrument, concept").equals(stored)

    # The daily retrain's rolling segments: derived over the rolling train window.
    rolled = materialize_selection(settings, "concepts", tags={ROLLING_SEGMENTS_TAG: "rolling"})
    assert rolled.success
    fit = wh.query("select fit_start, fit_end from concept_source").row(0)
    assert _metadata(rolled)["fit_window"] == f"{fit[0]}..{fit[1]}" and fit[1] > train[1]

    # Lenient mode and a file whose every line is bad: derived as well, and the file's lines reported.
    path = root / "concepts.csv"
    path.write_text("instrument,concept\nNOPE,x\n")
    report = fit_and_store_concepts(wh, open_source(f"qlib:{root}", on_bad_file="skip"), default_segments(calendar))
    assert report.origin == "derived" and [s.path for s in report.skipped] == [f"{path}, line 2"]
    assert report.concepts.source.endswith(f"; the source has none: every line of {path} left out as bad")
    assert wh.query("select * from concepts order by instrument, concept").equals(stored)


def test_workflow_needs_the_universe_first(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.ensure_schema()
    source = SyntheticSource(SyntheticSpec.parse(SMALL_SOURCE.split(":", 1)[1]))
    segments = default_segments(source.calendar())
    with pytest.raises(ValueError, match="no universe members; materialize the universe asset first"):
        fit_and_store_concepts(wh, source, segments)


def test_daily_retrain_refits_concepts_and_daily_update_does_not(tmp_path: Path) -> None:
    defs = build_definitions(settings_for(tmp_path))
    retrain = {k.to_user_string() for k in defs.resolve_job_def("daily_retrain").asset_layer.executable_asset_keys}
    update = {k.to_user_string() for k in defs.resolve_job_def("daily_update").asset_layer.executable_asset_keys}
    assert "concepts" in retrain and "concepts" not in update
    node = defs.resolve_assets_def("concepts")
    spec = next(iter(node.specs))
    assert spec.group_name == "handlers" and {d.asset_key.to_user_string() for d in spec.deps} == {"bars", "universe"}
