"""Entry points: compute a catalog feature set (alpha158, alpha360, label, or a user's set) from bars on a
trading calendar, through the expression engine (``features.expressions.compute_columns``). The sets, their
columns, lookbacks and horizons come from ``features.catalog``."""

from __future__ import annotations

import polars as pl

from features import catalog
from features.catalog import CatalogView, FeatureSetSpec
from features.dates import DateLike
from features.expressions import compute_columns
from features.expressions.grid import CalendarLike

# name -> the catalog record of every set in force (built-ins and PIPELINE_FEATURES sets).
FEATURE_SETS: CatalogView[FeatureSetSpec] = CatalogView(lambda spec: spec)


def lookback(feature_set: str) -> int:
    """Trading days of bars needed before ``start`` for values at ``start`` to equal a full-history run."""
    return catalog.get(feature_set).lookback


def horizon(feature_set: str) -> int:
    """Trading days of bars after ``end`` that the values up to ``end`` read."""
    return catalog.get(feature_set).horizon


def compute_features(
    name: str,
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    members: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Catalog feature set ``name`` as instrument, date, <its columns in order> (Float32).

    One row per calendar day from each instrument's first to last bar date (days without a bar included, as in
    Qlib), limited to [start, end], sorted by (instrument, date). Qlib's NaN is null; +-inf is kept.

    History: values at ``start`` equal a full-history run when ``bars`` holds at least ``lookback(name)``
    trading days before it (and ``horizon(name)`` days after ``end``). ``bars`` may be a LazyFrame over all
    history: only that date range is materialised, and each instrument's first/last day still come from all of
    it. ``members`` (instrument, date) restricts the cross-sectional operators' universe per day.
    """
    spec = catalog.get(name)
    columns = list(zip(spec.column_names, spec.nodes, strict=True))
    return compute_columns(columns, bars, calendar, start, end, members=members, set_name=name)
