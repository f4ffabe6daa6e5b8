"""Entry points: compute a named feature set (alpha158, alpha360, label) from bars on a trading calendar."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from features import alpha158, alpha360, labels
from features.calendar_grid import CalendarLike, DateLike, FrameBuilder, Grid, Sink, build_layout, empty_frame


@dataclass(frozen=True)
class FeatureSet:
    name: str
    columns: list[str]
    fields: Sequence[str]
    required: Sequence[str]
    lookback: int  # trading days of history needed before the first output day
    horizon: int  # trading days of future bars read after the last output day
    make: Callable[[Grid, Sink], None]  # writes every column of one chunk into the sink
    chunk_cells: int  # cells per group of instruments: small keeps rolling temporaries in cache


def default_threads() -> int:
    """Worker threads for chunks (numpy releases the GIL in its kernels): the usable cores, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


FEATURE_SETS: dict[str, FeatureSet] = {
    "alpha158": FeatureSet(
        "alpha158", alpha158.ALPHA158_COLUMNS, alpha158.FIELDS, alpha158.REQUIRED, alpha158.LOOKBACK, 0,
        alpha158.write_alpha158, 50_000,
    ),
    "alpha360": FeatureSet(
        "alpha360", alpha360.ALPHA360_COLUMNS, alpha360.FIELDS, alpha360.REQUIRED, alpha360.LOOKBACK, 0,
        alpha360.write_alpha360, 100_000,
    ),
    "label": FeatureSet(
        "label", labels.LABEL_COLUMNS, labels.FIELDS, labels.REQUIRED, 0, labels.HORIZON, labels.write_labels,
        1_000_000,
    ),
}  # fmt: skip


def _feature_set(name: str) -> FeatureSet:
    try:
        return FEATURE_SETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown feature set {name!r}; valid names: {sorted(FEATURE_SETS)}") from None


def lookback(feature_set: str) -> int:
    """Trading days of bars needed before ``start`` for values at ``start`` to equal a full-history run."""
    return _feature_set(feature_set).lookback


def label_horizon() -> int:
    """Trading days of bars after a date that its label reads (``Ref($close, -2)``)."""
    return labels.HORIZON


def compute_features(
    name: str,
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    start: DateLike = None,
    end: DateLike = None,
    *,
    n_threads: int | None = None,
) -> pl.DataFrame:
    """Feature set ``name`` ("alpha158", "alpha360" or "label") as instrument, date, <columns> (Float32).

    One row per calendar day from each instrument's first to last bar date (days without a bar included, as in
    Qlib), limited to [start, end], sorted by (instrument, date). Qlib's NaN is null; +-inf is kept.

    History: values at ``start`` equal a full-history run when ``bars`` holds at least ``lookback(name)``
    trading days before it (and, for the label, ``label_horizon()`` days after ``end``). ``bars`` may be a
    LazyFrame over all history: only that date range is materialised, and each instrument's first/last day still
    come from all of it. If ``bars`` is itself cut, an instrument whose cut falls inside a run of missing days
    starts at its first bar after the cut (that run is then treated as "before listing").

    Groups of instruments are computed on ``n_threads`` threads (default: ``default_threads()``).
    """
    spec = _feature_set(name)
    threads = default_threads() if n_threads is None else int(n_threads)
    if threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    layout = build_layout(
        bars, calendar, spec.fields, spec.required, start, end,
        lookback=spec.lookback, horizon=spec.horizon, chunk_cells=spec.chunk_cells,
    )  # fmt: skip
    if layout.n_rows == 0:
        return empty_frame(spec.columns)
    builder = FrameBuilder(layout, spec.columns)

    def run(grid: Grid) -> None:
        spec.make(grid, builder.sink(grid))

    if threads == 1:
        for grid in layout.grids:
            run(grid)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, layout.grids))
    return builder.frame()


def compute_alpha158(
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    start: DateLike = None,
    end: DateLike = None,
    *,
    n_threads: int | None = None,
) -> pl.DataFrame:
    """Qlib's Alpha158 (see ``features.alpha158``)."""
    return compute_features("alpha158", bars, calendar, start, end, n_threads=n_threads)


def compute_alpha360(
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    start: DateLike = None,
    end: DateLike = None,
    *,
    n_threads: int | None = None,
) -> pl.DataFrame:
    """Qlib's Alpha360 (see ``features.alpha360``)."""
    return compute_features("alpha360", bars, calendar, start, end, n_threads=n_threads)


def compute_labels(
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    start: DateLike = None,
    end: DateLike = None,
    *,
    n_threads: int | None = None,
) -> pl.DataFrame:
    """Qlib's default label LABEL0 (see ``features.labels``)."""
    return compute_features("label", bars, calendar, start, end, n_threads=n_threads)
