"""Date partitions: one per weekday of the source's history, in the market's time zone."""

import datetime as dt

import dagster as dg

# Weekdays, not every calendar day: markets do not trade on weekends, and each partition of a range costs
# the event log an entry per asset. Holidays remain as partitions that hold no trading day: they succeed
# and write nothing.
TRADING_WEEKDAYS_CRON = "0 0 * * 1-5"


def daily_partitions(first_day: dt.date, timezone: str) -> dg.TimeWindowPartitionsDefinition:
    # Partitions run up to today so that a daily run can ask for today's bars.
    return dg.TimeWindowPartitionsDefinition(
        start=first_day.isoformat(),
        cron_schedule=TRADING_WEEKDAYS_CRON,
        fmt="%Y-%m-%d",
        timezone=timezone,
        end_offset=1,
    )


def window_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """Inclusive first and last date of the partition window a run covers (one day or a backfill range)."""
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()
