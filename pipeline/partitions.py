"""Daily date partitions over the source's history, in the market's time zone."""

import datetime as dt

import dagster as dg


def daily_partitions(first_day: dt.date, timezone: str) -> dg.DailyPartitionsDefinition:
    # Partitions run up to today so a daily run can ask for today's bars; days the source's calendar does
    # not list (weekends, holidays, days after the data ends) are empty partitions, not failures.
    return dg.DailyPartitionsDefinition(start_date=first_day.isoformat(), timezone=timezone, end_offset=1)


def window_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """Inclusive first and last date of the partition window a run covers (one day or a backfill range)."""
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()
