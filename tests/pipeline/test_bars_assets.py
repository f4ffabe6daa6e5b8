"""The bars group through real Dagster materializations against a temporary DuckDB file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pipeline.definitions import build_resources
from tests.helpers import materialize_selection, range_tags, settings_for
from warehouse.sources import SyntheticSource
from warehouse.sources.qlib_bin import write_qlib_dir
from warehouse.sources.synthetic import SyntheticSpec
from warehouse.store import Warehouse


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_bars_range_backfill_in_one_run_then_idempotent_partition(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    result = materialize_selection(settings, "group:bars", tags=range_tags("2020-01-02", "2020-12-31"))
    assert result.success
    wh = Warehouse(settings.warehouse)
    full = wh.query("select * from bars order by instrument, date")
    source = SyntheticSource(SyntheticSpec.parse(settings.source.split(":", 1)[1]))
    assert full.height == source.read_bars(None).bars.height
    checks = _check_results(result)
    assert {c: e.passed for c, e in checks.items()} == {
        "bars_unique_keys": True,
        "bars_price_sanity": True,
        "bars_dates_in_calendar": True,
        "bars_membership_coverage": True,
    }
    mats = result.asset_materializations_for_node("bars")
    # One run and one step wrote the whole range; Dagster records each partition of it.
    assert len(result.get_step_success_events()) == 7  # calendar, universe, bars, four checks
    assert len(mats) == 261  # weekday partitions of 2020 from Thursday Jan 2
    assert mats[0].metadata["rows"].value == full.height

    # Re-materializing one day replaces exactly that day.
    again = materialize_selection(settings, "bars", partition_key="2020-03-10")
    assert again.success
    assert wh.query("select * from bars order by instrument, date").equals(full)
    # A holiday partition (the synthetic spring-festival week) has no trading day: it succeeds, writes nothing.
    weekend = materialize_selection(settings, "bars", partition_key="2020-02-04")
    assert weekend.success
    assert weekend.asset_materializations_for_node("bars")[0].metadata["rows"].value == 0
    assert wh.query("select count(*) as n from bars").item() == full.height


def test_checks_fail_on_planted_bad_data(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert materialize_selection(settings, "group:bars", tags=range_tags("2020-01-02", "2020-02-28")).success
    wh = Warehouse(settings.warehouse)
    victim = wh.query("select instrument, date from bars where instrument <> 'SYNIDX' order by all limit 1").row(0)
    wh.execute("update bars set high = low - 1 where instrument = ? and date = ?", list(victim))
    wh.execute("insert into bars (instrument, date, close) values (?, '2020-01-04', 5.0)", [victim[0]])  # Saturday
    wh.execute("insert into instruments values ('all', 'GHOST', '2020-01-01', '2020-12-31')")
    defs_resources = build_resources(settings)
    from assets.bars import build_bars_checks

    checks = {c.check_specs.__iter__().__next__().name: c for c in build_bars_checks()}
    ctx = dg.build_asset_check_context(resources={"warehouse": defs_resources["warehouse"]})
    price = checks["bars_price_sanity"](ctx)
    assert not price.passed and victim[0] in price.metadata["examples"].value
    dates = checks["bars_dates_in_calendar"](ctx)
    assert not dates.passed and dates.metadata["outside"].value == 1
    coverage = checks["bars_membership_coverage"](ctx)
    assert not coverage.passed and "GHOST" in coverage.metadata["instruments"].value
    assert coverage.severity == dg.AssetCheckSeverity.WARN
    assert checks["bars_unique_keys"](ctx).passed


def test_strict_failure_leaves_warehouse_untouched_and_skip_mode_reports(tmp_path: Path) -> None:
    spec = SyntheticSpec(seed=5, instruments=6, start=dt.date(2021, 1, 1), end=dt.date(2021, 3, 31), core_size=3)
    synth = SyntheticSource(spec)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for (inst,), frame in synth.read_bars(None).bars.group_by(["instrument"]):
        frame.drop("instrument").write_csv(csv_dir / f"{inst}.csv")
    settings = settings_for(tmp_path, source=f"csv:{csv_dir}")
    assert materialize_selection(settings, "group:bars", tags=range_tags("2021-01-04", "2021-03-31")).success
    wh = Warehouse(settings.warehouse)
    before = wh.query("select * from bars order by instrument, date")

    (csv_dir / "SYN0002.csv").write_text('{"error": "quota exceeded"}')
    strict = settings_for(tmp_path, source=f"csv:{csv_dir}")
    from pipeline.resources import _open_cached
    from warehouse.sources.base import SourceError

    _open_cached.cache_clear()
    with pytest.raises(SourceError, match=r"SYN0002.csv: not a CSV file"):
        materialize_selection(strict, "bars", tags=range_tags("2021-01-04", "2021-03-31"))
    assert wh.query("select * from bars order by instrument, date").equals(before)

    _open_cached.cache_clear()
    lenient = settings_for(tmp_path, source=f"csv:{csv_dir}", on_bad_file="skip")
    result = materialize_selection(lenient, "bars", tags=range_tags("2021-01-04", "2021-03-31"))
    meta = result.asset_materializations_for_node("bars")[0].metadata
    assert meta["skipped_files"].value == 1 and "SYN0002.csv" in meta["skipped"].value
    after = wh.query("select * from bars order by instrument, date")
    assert "SYN0002" not in after["instrument"].to_list()
    assert after.height == before.filter(pl.col("instrument") != "SYN0002").height
    _open_cached.cache_clear()


def test_qlib_source_with_universe_and_benchmark(tmp_path: Path) -> None:
    spec = SyntheticSpec(seed=9, instruments=10, start=dt.date(2021, 1, 1), end=dt.date(2021, 6, 30), core_size=4)
    synth = SyntheticSource(spec)
    root = write_qlib_dir(
        tmp_path / "q", synth.read_bars(None).bars, synth.calendar(), {"core": synth.membership("core")}
    )
    settings = settings_for(tmp_path, source=f"qlib:{root}", universe="core", benchmark="SYNIDX")
    assert materialize_selection(settings, "group:bars", tags=range_tags("2021-01-04", "2021-06-30")).success
    wh = Warehouse(settings.warehouse)
    members = set(synth.membership("core")["instrument"].to_list())
    stored = set(wh.query("select distinct instrument from bars")["instrument"].to_list())
    assert stored == members | {"SYNIDX"}
    assert wh.query("select distinct universe from instruments").item() == "core"
