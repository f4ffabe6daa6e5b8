"""Date partitions: one per weekday of the source's history, in the market's time zone.

The partitions end with the data: the last one is the source's last trading day. They are fixed when the code
location loads (Dagster builds a partitions definition once per load), so they grow with the calendar on the
next load: every ``python -m pipeline materialize`` loads anew, and a long-running ``dagster dev`` picks new
days up on a code location reload (Deployment → Reload, or the sensor's hint). The sensor and the schedule
never request a day beyond the loaded partitions (see ``pipeline.automation``).
"""

import datetime as dt

import dagster as dg

# Weekdays, not every calendar day: markets do not trade on weekends, and each partition of a range costs
# the event log an entry per asset. Holidays remain as partitions that hold no trading day: they succeed
# and write nothing.
TRADING_WEEKDAYS_CRON = "0 0 * * 1-5"


def next_weekday(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def daily_partitions(first_day: dt.date, last_day: dt.date, timezone: str) -> dg.TimeWindowPartitionsDefinition:
    """Weekday partitions from ``first_day`` to ``last_day`` (the source's last trading day) inclusive."""
    if last_day < first_day:
        raise ValueError(f"partitions: last day {last_day} is before first day {first_day}")
    # Dagster keeps a partition whose window ends at or before `end`; a weekday partition's window ends at the
    # next weekday's start (Friday's spans the weekend), so `end` is the weekday after the last trading day.
    return dg.TimeWindowPartitionsDefinition(
        start=first_day.isoformat(),
        end=next_weekday(last_day).isoformat(),
        cron_schedule=TRADING_WEEKDAYS_CRON,
        fmt="%Y-%m-%d",
        timezone=timezone,
    )


def window_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """Inclusive first and last date of the partition window a run covers (one day or a backfill range)."""
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()
