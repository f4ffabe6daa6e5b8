"""Reads the model stages share: a feature set's panel with its labels, the universe's membership, and the
latest day that has a label."""

from __future__ import annotations

import datetime as dt

import polars as pl

from features import catalog
from warehouse.feature_store import history_bounds, read_feature_frame, trading_days
from warehouse.store import Warehouse


def latest_labelled_day(warehouse: Warehouse) -> dt.date | None:
    label = catalog.label_set()
    if not warehouse.table_exists(label.table):
        return None
    column = label.column_names[0]
    return warehouse.query(f'select max(date) as d from {label.table} where "{column}" is not null').item()


def read_membership(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query("select instrument, start_date, end_date from instruments order by instrument, start_date")


def read_panel(
    warehouse: Warehouse,
    feature_set: str,
    start: dt.date,
    end: dt.date,
    columns: list[str] | None = None,
    what: str = "the requested window",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Features of ``feature_set`` and the labels over [start, end], for the handlers: the rows of the universe's
    members only (the handlers keep no other row: ``processing.panel.panel_from_frames`` filters by the same
    membership) in no particular order (the panel sorts its rows by date and instrument itself). An empty
    feature window is an error that says which window (``what``) and what to materialize."""
    features = read_feature_frame(warehouse, feature_set, start, end, columns, members_only=True, ordered=False)
    labels = read_feature_frame(warehouse, catalog.label_set().name, start, end, members_only=True, ordered=False)
    if features.height == 0:
        raise ValueError(
            f"{what} {start}..{end} has no {feature_set} features in the warehouse; check the segments or "
            "materialize the features assets for those dates"
        )
    return features, labels


def history_start(warehouse: Warehouse, start: dt.date, step_len: int) -> dt.date:
    """The first day a sequence window of ``step_len`` days ending on ``start`` reads."""
    first, _ = history_bounds(trading_days(warehouse), start, start, step_len, 0)
    return first
