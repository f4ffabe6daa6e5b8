"""Moving a source's calendar, universe membership and bars into the warehouse."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import polars as pl

from warehouse.sources.base import BarSource, SkippedFile, SourceError
from warehouse.store import Warehouse


@dataclass
class IngestReport:
    start: dt.date
    end: dt.date
    rows: int
    instruments: int
    trading_days: int
    seconds: float
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def universe_members(source: BarSource, universe: str | None, benchmark: str | None) -> pl.DataFrame:
    """Membership ranges of the universe, without the benchmark index (it is the yardstick, not a stock)."""
    members = source.membership(universe)
    if benchmark:
        members = members.filter(pl.col("instrument") != benchmark)
    return members


def sync_calendar(source: BarSource, warehouse: Warehouse) -> int:
    cal = pl.DataFrame({"date": source.calendar()}, schema={"date": pl.Date})
    return warehouse.replace("calendar", cal)


def sync_membership(source: BarSource, warehouse: Warehouse, universe: str | None, benchmark: str | None) -> int:
    name = universe or "all"
    members = universe_members(source, universe, benchmark).with_columns(pl.lit(name).alias("universe"))
    if benchmark and benchmark not in source_instruments(source):
        raise SourceError(f"benchmark instrument {benchmark!r} (PIPELINE_BENCHMARK) has no data in {source.uri}")
    # One universe at a time: the table describes the configured universe only.
    return warehouse.replace("instruments", members.select("universe", "instrument", "start_date", "end_date"))


def source_instruments(source: BarSource) -> set[str]:
    lister = getattr(source, "instruments_with_data", None)
    if lister is not None:
        return set(lister())
    return set(source.read_bars(None).bars["instrument"].unique().to_list())


def ingest_bars(
    source: BarSource,
    warehouse: Warehouse,
    start: dt.date,
    end: dt.date,
    universe: str | None,
    benchmark: str | None,
) -> IngestReport:
    """Replace the warehouse's bars dated [start, end] by the source's, in one transaction.

    Strict sources raise before anything is written; lenient ones report the files they skipped.
    """
    t0 = time.perf_counter()
    members = universe_members(source, universe, benchmark)
    wanted = sorted(set(members["instrument"].to_list()) | ({benchmark} if benchmark else set()))
    read = source.read_bars(wanted, start, end)
    bars = read.bars
    calendar = set(source.calendar())
    outside = bars.filter(~pl.col("date").is_in(list(calendar)))
    if outside.height:
        row = outside.row(0, named=True)
        raise SourceError(
            f"{source.uri}: bar dated {row['date']} for instrument {row['instrument']} is not a trading day "
            "of the source's calendar"
        )
    rows = warehouse.replace("bars", bars, date_range=(start, end))
    days = [d for d in calendar if start <= d <= end]
    return IngestReport(
        start=start,
        end=end,
        rows=rows,
        instruments=bars["instrument"].n_unique() if bars.height else 0,
        trading_days=len(days),
        seconds=time.perf_counter() - t0,
        # bad membership lines left out in lenient mode are reported with the bad files
        skipped=read.skipped + source.skipped_membership(),
    )
