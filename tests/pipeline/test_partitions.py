"""Partitions end with the source's last trading day and grow with its calendar; the sensor and the schedule
request only partition keys the loaded definitions have."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl

from pipeline.automation import plan_daily_run
from pipeline.definitions import build_definitions
from pipeline.partitions import daily_partitions
from pipeline.resources import open_source_cached
from tests.helpers import settings_for
from warehouse.sources.synthetic import SyntheticSource, SyntheticSpec


def _partitions(defs: dg.Definitions) -> dg.TimeWindowPartitionsDefinition:
    partitions = defs.resolve_assets_def("bars").partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    return partitions


def test_synthetic_default_partitions_end_on_its_last_trading_day(tmp_path: Path) -> None:
    defs = build_definitions(settings_for(tmp_path, source="synthetic"))
    keys = _partitions(defs).get_partition_keys()
    assert keys[0] == "2019-01-02" and keys[-1] == "2022-12-30"
    assert not any(key > "2022-12-30" for key in keys)
    for name in ("features_alpha158", "features_alpha360", "labels", "predictions_gru"):
        assert defs.resolve_assets_def(name).partitions_def.get_last_partition_key() == "2022-12-30"


def test_last_partition_is_the_last_day_whatever_its_weekday() -> None:
    for last in (dt.date(2022, 12, 30), dt.date(2022, 12, 28), dt.date(2022, 12, 26)):
        keys = daily_partitions(dt.date(2022, 12, 1), last, "Asia/Shanghai").get_partition_keys()
        assert keys[-1] == last.isoformat()


def _write_csv(csv_dir: Path, bars: pl.DataFrame) -> None:
    for (inst,), frame in bars.group_by(["instrument"]):
        frame.drop("instrument").sort("date").write_csv(csv_dir / f"{inst}.csv")


def test_partitions_grow_with_the_calendar_and_the_sensor_requests_valid_keys(tmp_path: Path) -> None:
    spec = SyntheticSpec(seed=5, instruments=4, start=dt.date(2021, 1, 1), end=dt.date(2021, 3, 31), core_size=2)
    bars = SyntheticSource(spec).read_bars(None).bars
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    first_part = bars.filter(pl.col("date") <= dt.date(2021, 3, 26))  # a Friday
    _write_csv(csv_dir, first_part)
    settings = settings_for(tmp_path, source=f"csv:{csv_dir}")
    open_source_cached.cache_clear()
    defs = build_definitions(settings)
    loaded = _partitions(defs)
    assert loaded.get_last_partition_key() == "2021-03-26"

    # The calendar grows by the next trading days while the loaded definitions stay as they are.
    _write_csv(csv_dir, bars.filter(pl.col("date") <= dt.date(2021, 3, 30)))
    sensor = defs.get_sensor_def("new_data_sensor")
    with dg.instance_for_test() as instance:
        result = sensor(dg.build_sensor_context(instance=instance, cursor="2021-03-24"))
        assert isinstance(result, dg.SensorResult)
        (request,) = result.run_requests
        start = request.tags["dagster/asset_partition_range_start"]
        end = request.tags["dagster/asset_partition_range_end"]
        assert (start, end) == ("2021-03-25", "2021-03-26")  # only keys the loaded definitions have
        assert loaded.has_partition_key(start) and loaded.has_partition_key(end)
        assert result.cursor == "2021-03-26"
        # Nothing left it can request: it skips with the reload hint instead of asking for missing keys.
        skip = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert isinstance(skip, dg.SkipReason) and "reload the code location" in skip.skip_message
        assert "2021-03-29" in skip.skip_message

        schedule_skip = plan_daily_run(settings, dt.date(2021, 3, 30), last_partition=dt.date(2021, 3, 26))
        assert isinstance(schedule_skip, dg.SkipReason) and "no partition yet" in schedule_skip.skip_message

        # Re-loading the definitions (a code location reload, or the next CLI run) adds the new days.
        open_source_cached.cache_clear()
        grown = build_definitions(settings)
        assert _partitions(grown).get_last_partition_key() == "2021-03-30"
        assert not _partitions(grown).has_partition_key("2021-03-31")
        result = grown.get_sensor_def("new_data_sensor")(
            dg.build_sensor_context(instance=instance, cursor="2021-03-26")
        )
        assert isinstance(result, dg.SensorResult)
        (request,) = result.run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "2021-03-29"
        assert request.tags["dagster/asset_partition_range_end"] == "2021-03-30"
        assert all(_partitions(grown).has_partition_key(request.tags[t]) for t in request.tags if "range" in t)
        request = plan_daily_run(settings, dt.date(2021, 3, 30), last_partition=dt.date(2021, 3, 30))
        assert isinstance(request, dg.RunRequest)
        assert request.tags["dagster/asset_partition_range_end"] == "2021-03-30"
