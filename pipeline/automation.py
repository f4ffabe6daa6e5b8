"""Jobs, the daily schedule and the new-data sensor.

* ``daily_update``: bars, features and labels of the recent days, and the day's scores with the current
  models. Its runs cover a short range ending today (``Settings.refresh_days`` calendar days, default 14):
  labels need two later trading days, so the labels of the days before today only become known now.
* ``daily_retrain``: the same plus the handlers and models retrained on a rolling window ending at the latest
  labelled day, then the evaluation.
* ``daily_schedule``: on each trading day after the close (market time zone) requests one of the two, the
  retrain every ``Settings.retrain_every`` trading days (default 1: daily). Days that are not in the source's
  calendar are skipped with a reason, not failed.
* ``new_data_sensor``: watches the source's calendar; when new trading days appear it requests the matching
  partitions.
"""

import datetime as dt
import zoneinfo

import dagster as dg

from features import catalog
from pipeline.resources import ROLLING_SEGMENTS_TAG, open_source_cached
from pipeline.settings import Settings
from warehouse.sources import open_source
from workflow.names import predictions_asset


def partitioned_update() -> list[str]:
    """The partitioned assets a daily update refreshes: the bars and every feature table of the catalog in
    force (built-ins, label, PIPELINE_FEATURES sets)."""
    return ["bars", *(spec.table for spec in catalog.active().values())]


UNPARTITIONED_REFERENCE = ["calendar", "universe"]


def _range_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": end.isoformat(),
    }


def build_jobs(model_names: list[str]) -> list:
    predictions = [predictions_asset(m) for m in model_names]
    update = dg.AssetSelection.assets(*UNPARTITIONED_REFERENCE, *partitioned_update(), *predictions)
    retrain = update | dg.AssetSelection.groups("handlers", "models", "evaluation")
    return [
        dg.define_asset_job(
            "daily_update",
            selection=update,
            description="Ingest the recent days' bars, compute their features and labels, score them.",
        ),
        dg.define_asset_job(
            "daily_retrain",
            selection=retrain,
            description="daily_update, then refit the handlers, retrain every model on a rolling window "
            "ending at the latest labelled day, rescore and re-evaluate.",
            tags={ROLLING_SEGMENTS_TAG: "rolling"},
        ),
        dg.define_asset_job(
            "benchmark",
            selection=dg.AssetSelection.assets("benchmark_results"),
            description="Qlib's benchmark table: every model configuration x seeds on the configured segments, "
            "mean ± std per model (launch with python -m pipeline benchmark, or here with a run config).",
        ),
    ]


RELOAD_HINT = (
    "the loaded partitions end on {end}: reload the code location (UI: Deployment → Reload) to add the "
    "later trading days; `python -m pipeline materialize` loads them on every run"
)


def build_schedule(settings: Settings, last_partition: dt.date | None = None) -> dg.ScheduleDefinition:
    retrain_every, refresh_days, cron = settings.retrain_every, settings.refresh_days, settings.schedule_cron

    @dg.schedule(
        name="daily_schedule",
        cron_schedule=cron,
        execution_timezone=settings.timezone,
        job_name="daily_update",
        description=f"Each trading day at '{cron}' ({settings.timezone}): daily_update, or daily_retrain every "
        f"{retrain_every} trading day(s).",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        tz = zoneinfo.ZoneInfo(settings.timezone)
        today = (context.scheduled_execution_time or dt.datetime.now(tz)).astimezone(tz).date()
        return plan_daily_run(settings, today, retrain_every, refresh_days, last_partition)

    return daily_schedule


def plan_daily_run(
    settings: Settings,
    today: dt.date,
    retrain_every: int = 1,
    refresh_days: int = 14,
    last_partition: dt.date | None = None,
) -> dg.RunRequest | dg.SkipReason:
    """The run the schedule asks for on ``today`` (a plain function, so it is testable). ``last_partition``
    is the last partition of the loaded definitions: a day after it has no partition yet, so it is skipped
    with the reload hint rather than requested."""
    calendar = open_source(settings.source, settings.on_bad_file).calendar()
    if today not in calendar:
        return dg.SkipReason(f"{today} is not a trading day of {settings.source}")
    if last_partition is not None and today > last_partition:
        return dg.SkipReason(f"{today} has no partition yet: " + RELOAD_HINT.format(end=last_partition))
    start = min(d for d in calendar if d >= today - dt.timedelta(days=refresh_days))
    position = calendar.index(today)
    job = "daily_retrain" if position % retrain_every == 0 else "daily_update"
    return dg.RunRequest(
        run_key=f"{job}-{today.isoformat()}",
        job_name=job,
        tags={**_range_tags(start, today), "pipeline/trigger": "schedule"},
    )


def build_sensor(settings: Settings, last_partition: dt.date | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name="new_data_sensor",
        job_name="daily_update",
        minimum_interval_seconds=300,
        description="Requests the partitions of trading days that newly appeared in the source's calendar.",
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def new_data_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        calendar = open_source(settings.source, settings.on_bad_file).calendar()
        open_source_cached.cache_clear()
        last_seen = dt.date.fromisoformat(context.cursor) if context.cursor else None
        request = plan_new_data_run(calendar, last_seen, last_partition)
        beyond = [d for d in calendar if last_partition is not None and d > last_partition]
        if beyond:
            # Days the loaded partitions do not have yet: never requested (their keys do not exist); the
            # cursor stops at the loaded end, so they are requested on the first tick after a reload.
            context.log.warning(
                f"{len(beyond)} new trading day(s) {beyond[0]}..{beyond[-1]}: " + RELOAD_HINT.format(end=last_partition)
            )
        if request is None:
            if beyond:
                return dg.SkipReason(
                    f"{len(beyond)} new trading day(s) from {beyond[0]}: " + RELOAD_HINT.format(end=last_partition)
                )
            return dg.SkipReason(f"no trading day after {last_seen} in {settings.source}")
        return dg.SensorResult(run_requests=[request], cursor=request.tags["dagster/asset_partition_range_end"])

    return new_data_sensor


def plan_new_data_run(
    calendar: list[dt.date], last_seen: dt.date | None, last_partition: dt.date | None = None
) -> dg.RunRequest | None:
    """The run for the trading days after ``last_seen``, up to ``last_partition`` (the loaded partitions' last
    day, when given): a day beyond it has no partition key yet."""
    new_days = [
        d for d in calendar if (last_seen is None or d > last_seen) and (last_partition is None or d <= last_partition)
    ]
    if not new_days:
        return None
    return dg.RunRequest(
        run_key=f"new-data-{new_days[0]}-{new_days[-1]}",
        job_name="daily_update",
        tags={**_range_tags(new_days[0], new_days[-1]), "pipeline/trigger": "new_data_sensor"},
    )
