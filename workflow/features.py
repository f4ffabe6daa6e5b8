"""The feature stage: compute a date window of a catalog set from the warehouse's bars (with the history the
expressions need) and replace exactly that window of its table, in one transaction."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from features import catalog, compute_features
from features.catalog import FeatureSetSpec
from features.checks import WindowQuality, inspect_window
from warehouse.feature_store import ensure_no_primary_key, has_primary_key, history_bounds, trading_days
from warehouse.store import Warehouse

# Trading days before a window whose missing suspension rows a window run adds (see build_feature_window).
GAP_FILL_DAYS = 80


@dataclass
class WindowReport:
    table: str
    start: dt.date
    end: dt.date
    rows: int
    instruments: int
    bars_read: int
    seconds: float
    # Phases of ``seconds``: reading the bars, computing the features, writing the rows (one transaction) and,
    # when asked for, the statistics of the checks.
    read_s: float = 0.0
    compute_s: float = 0.0
    write_s: float = 0.0
    # The window's per-column statistics for the asset checks (``inspect``), part of ``seconds``.
    inspect_s: float = 0.0
    # Per-column statistics of the window's rows (the feature checks), when asked for.
    quality: WindowQuality | None = None


def bar_columns(warehouse: Warehouse, spec: FeatureSetSpec, present: set[str] | None = None) -> list[str]:
    """The bars columns a window of ``spec`` reads: the key and the fields its expressions name. A field that
    is not a column of ``bars`` (``present``: read from the warehouse when not given; a source field this source
    does not have) is an error naming the column."""
    if present is None:
        present = set(warehouse.query("select * from bars limit 0").columns)
    for col in spec.column_names:
        missing = sorted(spec.column_fields[col] - present)
        if missing:
            raise ValueError(
                f"feature set {spec.name!r}, column {col!r}: field ${missing[0]} is not a column of bars "
                f"(bars has {', '.join(sorted(present - {'instrument', 'date'}))})"
            )
    return ["instrument", "date", *spec.fields]


# (instrument, date) of the universe's members per trading day: the cross-sectional operators' universe (bars
# also hold the benchmark, which is not a member).
MEMBERS_SQL = (
    "select distinct m.instrument, c.date from calendar c join instruments m "
    "on c.date between m.start_date and m.end_date where c.date between ? and ? order by 1, 2"
)


def build_feature_window(
    warehouse: Warehouse, feature_set: str, start: dt.date, end: dt.date, *, inspect: bool = False
) -> WindowReport:
    """Compute catalog set ``feature_set`` for [start, end] and store it; ``inspect`` adds the window's
    per-column statistics (``features.checks``) to the report, and their time to ``seconds``."""
    spec = catalog.get(feature_set)
    t0 = time.perf_counter()
    table = spec.table
    # Every read of the run on one read-only connection: opening the warehouse file costs more than most of
    # these queries.
    with warehouse.connect(read_only=True) as con:
        present = set(con.sql("select * from bars limit 0").columns)
        calendar = trading_days(con)
        # All history for an expanding window (the engine's unbounded reach): the bisect below clamps to day one.
        before, after = spec.lookback, spec.horizon
        # A suspension that runs into this window gives rows to days *before* it (an instrument has rows up to
        # its latest bar), which an earlier run could not know. The run therefore also computes the
        # GAP_FILL_DAYS before its window and adds the rows missing there; existing rows are left as they are.
        gap_start, _ = history_bounds(calendar, start, start, GAP_FILL_DAYS, 0)
        first, last = history_bounds(calendar, gap_start, end, before, after)
        cols = ", ".join(f'"{c}"' for c in bar_columns(warehouse, spec, present))
        # Like Qlib, an instrument has a row on every trading day from its first to its last bar, suspended days
        # included. Its nearest bars before and after the window keep a suspension at either edge inside that
        # span; they are outside the history the expressions read, so they change no value.
        bars = con.sql(
            f"""
            select {cols} from bars where date between ? and ?
            union all
            (select {cols} from bars where date < ?
             qualify row_number() over (partition by instrument order by date desc) = 1)
            union all
            (select {cols} from bars where date > ?
             qualify row_number() over (partition by instrument order by date) = 1)
            order by instrument, date
            """,
            params=[first, last, first, last],
        ).pl()
        members = con.sql(MEMBERS_SQL, params=[first, last]).pl() if spec.cross_sectional else None
        keyed = has_primary_key(con, table)
    t_read = time.perf_counter()
    lo_bar = bars["date"].min() if bars.height else first
    hi_bar = bars["date"].max() if bars.height else last
    window_cal = [d for d in calendar if min(first, lo_bar) <= d <= max(last, hi_bar)]
    frame = compute_features(feature_set, bars, window_cal, start=gap_start, end=end, members=members)
    t_compute = time.perf_counter()
    # The labels of the last `after` trading days before the window read this window's bars: recompute them.
    write_start, _ = history_bounds(calendar, start, start, after, 0)
    # Rows before write_start are only added where missing; the split happens in DuckDB (no copy of the frame).
    if keyed:
        ensure_no_primary_key(warehouse, table)
    rows = warehouse.replace(
        table,
        frame,
        date_range=(write_start, end),
        key=("instrument", "date"),
        missing_before=write_start,
        primary_key=False,
    )
    t_write = time.perf_counter()
    quality = inspect_window(spec, frame, bars, window_cal, start=start) if inspect else None
    t_end = time.perf_counter()
    return WindowReport(
        table=table,
        start=start,
        end=end,
        rows=rows,
        instruments=frame["instrument"].filter(frame["date"] >= write_start).n_unique() if frame.height else 0,
        bars_read=bars.height,
        seconds=t_end - t0,
        read_s=t_read - t0,
        compute_s=t_compute - t_read,
        write_s=t_write - t_compute,
        inspect_s=t_end - t_write,
        quality=quality,
    )
