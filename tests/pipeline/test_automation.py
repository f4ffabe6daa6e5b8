"""The daily schedule's and the new-data sensor's decisions, as plain functions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from pipeline.automation import plan_daily_run, plan_new_data_run
from tests.helpers import settings_for


def test_schedule_skips_days_outside_the_calendar(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    saturday = dt.date(2020, 3, 14)
    result = plan_daily_run(settings, saturday)
    assert isinstance(result, dg.SkipReason)
    assert "2020-03-14 is not a trading day" in result.skip_message


def test_schedule_requests_recent_range_and_retrains_on_cadence(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    day = dt.date(2020, 3, 12)
    request = plan_daily_run(settings, day, retrain_every=1, refresh_days=14)
    assert isinstance(request, dg.RunRequest)
    assert request.job_name == "daily_retrain"
    assert request.tags["dagster/asset_partition_range_end"] == "2020-03-12"
    assert request.tags["dagster/asset_partition_range_start"] == "2020-02-27"
    jobs = {plan_daily_run(settings, dt.date(2020, 3, d), retrain_every=5).job_name for d in (9, 10, 11, 12, 13)}
    assert jobs == {"daily_retrain", "daily_update"}


def test_sensor_requests_only_new_days() -> None:
    cal = [dt.date(2021, 1, d) for d in (4, 5, 6, 7, 8)]
    assert plan_new_data_run(cal, dt.date(2021, 1, 8)) is None
    request = plan_new_data_run(cal, dt.date(2021, 1, 6))
    assert request is not None
    assert request.tags["dagster/asset_partition_range_start"] == "2021-01-07"
    assert request.tags["dagster/asset_partition_range_end"] == "2021-01-08"
    first = plan_new_data_run(cal, None)
    assert first is not None and first.tags["dagster/asset_partition_range_start"] == "2021-01-04"


def test_the_schedule_reads_its_settings_from_the_environment(tmp_path: Path) -> None:
    import dataclasses

    import pytest

    from pipeline.automation import build_schedule
    from pipeline.settings import Settings

    env = {"PIPELINE_SCHEDULE_CRON": "0 17 * * 1-5", "PIPELINE_RETRAIN_EVERY": "5", "PIPELINE_REFRESH_DAYS": "3"}
    parsed = Settings.from_env(env)
    assert (parsed.schedule_cron, parsed.retrain_every, parsed.refresh_days) == ("0 17 * * 1-5", 5, 3)
    settings = dataclasses.replace(settings_for(tmp_path), schedule_cron="0 17 * * 1-5", retrain_every=5)
    schedule = build_schedule(settings)
    assert schedule.cron_schedule == "0 17 * * 1-5" and "every 5 trading day(s)" in (schedule.description or "")
    for name, bad in (
        ("PIPELINE_RETRAIN_EVERY", "0"),
        ("PIPELINE_REFRESH_DAYS", "two"),
        ("PIPELINE_SCHEDULE_CRON", "daily"),
    ):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: bad})
