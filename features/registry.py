"""Entry points: compute a catalog feature set (alpha158, alpha360, label, or a user's set) from bars on a
trading calendar. The sets, their columns, lookbacks and horizons come from ``features.catalog``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from features import alpha158, alpha360, catalog, labels
from features.calendar_grid import CalendarLike, DateLike, FrameBuilder, Grid, Sink, build_layout, empty_frame
from features.catalog import CatalogView, FeatureSetSpec

# name -> the catalog record of every set in force (built-ins and PIPELINE_FEATURES sets).
FEATURE_SETS: CatalogView[FeatureSetSpec] = CatalogView(lambda spec: spec)


@dataclass(frozen=True)
class _Kernel:
    """The hand-written numpy kernels of the built-in sets, until the expression engine replaces them."""

    fields: Sequence[str]
    required: Sequence[str]
    make: Callable[[Grid, Sink], None]  # writes every column of one chunk into the sink
    chunk_cells: int  # cells per group of instruments: small keeps rolling temporaries in cache


_KERNELS = {
    "alpha158": _Kernel(alpha158.FIELDS, alpha158.REQUIRED, alpha158.write_alpha158, 50_000),
    "alpha360": _Kernel(alpha360.FIELDS, alpha360.REQUIRED, alpha360.write_alpha360, 100_000),
    "label": _Kernel(labels.FIELDS, labels.REQUIRED, labels.write_labels, 1_000_000),
}


def default_threads() -> int:
    """Worker threads for chunks (numpy releases the GIL in its kernels): the usable cores, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def lookback(feature_set: str) -> int:
    """Trading days of bars needed before ``start`` for values at ``start`` to equal a full-history run."""
    return catalog.get(feature_set).lookback


def horizon(feature_set: str) -> int:
    """Trading days of bars after ``end`` that the values up to ``end`` read."""
    return catalog.get(feature_set).horizon


def label_horizon() -> int:
    """Trading days of bars after a date that its label reads (``Ref($close, -2)``)."""
    return catalog.label_set().horizon


def compute_features(
    name: str,
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    start: DateLike = None,
    end: DateLike = None,
    *,
    members: pl.DataFrame | None = None,
    n_threads: int | None = None,
) -> pl.DataFrame:
    """Catalog feature set ``name`` as instrument, date, <its columns in order> (Float32).

    One row per calendar day from each instrument's first to last bar date (days without a bar included, as in
    Qlib), limited to [start, end], sorted by (instrument, date). Qlib's NaN is null; +-inf is kept.

    History: values at ``start`` equal a full-history run when ``bars`` holds at least ``lookback(name)``
    trading days before it (and ``horizon(name)`` days after ``end``). ``bars`` may be a LazyFrame over all
    history: only that date range is materialised, and each instrument's first/last day still come from all of
    it. If ``bars`` is itself cut, an instrument whose cut falls inside a run of missing days starts at its
    first bar after the cut (that run is then treated as "before listing"). ``members`` (instrument, date)
    restricts the cross-sectional operators' universe per day.
    """
    spec = catalog.get(name)
    kernel = _KERNELS.get(name) if spec.source == catalog.BUILTIN else None
    if kernel is None:
        from features.expressions import compute_columns

        columns = list(zip(spec.column_names, spec.nodes, strict=True))
        return compute_columns(columns, bars, calendar, start, end, members=members, set_name=name)
    threads = default_threads() if n_threads is None else int(n_threads)
    if threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    layout = build_layout(
        bars, calendar, kernel.fields, kernel.required, start, end,
        lookback=spec.lookback, horizon=spec.horizon, chunk_cells=kernel.chunk_cells,
    )  # fmt: skip
    if layout.n_rows == 0:
        return empty_frame(spec.column_names)
    builder = FrameBuilder(layout, spec.column_names)

    def run(grid: Grid) -> None:
        kernel.make(grid, builder.sink(grid))

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
    """Qlib's Alpha158 (see ``features.qlib_sets``)."""
    return compute_features("alpha158", bars, calendar, start, end, n_threads=n_threads)


def compute_alpha360(
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    start: DateLike = None,
    end: DateLike = None,
    *,
    n_threads: int | None = None,
) -> pl.DataFrame:
    """Qlib's Alpha360 (see ``features.qlib_sets``)."""
    return compute_features("alpha360", bars, calendar, start, end, n_threads=n_threads)


def compute_labels(
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    start: DateLike = None,
    end: DateLike = None,
    *,
    n_threads: int | None = None,
) -> pl.DataFrame:
    """Qlib's default label LABEL0 (see ``features.qlib_sets``)."""
    return compute_features("label", bars, calendar, start, end, n_threads=n_threads)
