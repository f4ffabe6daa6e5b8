"""Feature and label tables in the warehouse: which table holds a catalog set, reading a date window of it, the
trading calendar the windows are cut from, and the key policy of these tables."""

from __future__ import annotations

import bisect
import datetime as dt

import duckdb
import polars as pl

from features.catalog import CatalogView
from warehouse.schema import member_condition
from warehouse.store import Warehouse

# feature set -> its table, for every set of the catalog in force (built-ins and PIPELINE_FEATURES sets).
FEATURE_TABLES: CatalogView[str] = CatalogView(lambda spec: spec.table)

# Feature and label tables keep (instrument, date) unique by how they are written (a window's dates deleted,
# then inserted; earlier days only where missing) and declare no primary key: DuckDB's index on a 160- or
# 360-column table made replacing a two-year window about five times slower than the insert itself.
# Warehouses written before that have the key: dropped once per table (checked once per process).
_CHECKED_NO_KEY: set[tuple[str, str]] = set()


def ensure_no_primary_key(warehouse: Warehouse, table: str) -> None:
    if (str(warehouse.path), table) not in _CHECKED_NO_KEY:
        warehouse.drop_primary_key(table)
        _CHECKED_NO_KEY.add((str(warehouse.path), table))


def has_primary_key(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` declares a primary key, on a connection the caller holds (a writer checks on its read
    connection and rebuilds with ``ensure_no_primary_key`` only when there is one to drop)."""
    found = con.execute(
        "select count(*) from duckdb_constraints() where table_name = ? and constraint_type = 'PRIMARY KEY'", [table]
    ).fetchall()
    return bool(found[0][0])


CALENDAR_SQL = "select date from calendar order by date"


def trading_days(warehouse: Warehouse | duckdb.DuckDBPyConnection) -> list[dt.date]:
    """The calendar's trading days in order, read through the warehouse or on a connection the caller holds."""
    if isinstance(warehouse, duckdb.DuckDBPyConnection):
        return warehouse.sql(CALENDAR_SQL).pl()["date"].to_list()
    return warehouse.query(CALENDAR_SQL)["date"].to_list()


def history_bounds(
    calendar: list[dt.date], start: dt.date, end: dt.date, before: int, after: int
) -> tuple[dt.date, dt.date]:
    """The bar dates a window needs: ``before`` trading days ahead of ``start`` and ``after`` past ``end``."""
    lo = bisect.bisect_left(calendar, start)
    hi = bisect.bisect_right(calendar, end) - 1
    first = calendar[max(0, lo - before)] if calendar else start
    last = calendar[min(len(calendar) - 1, max(hi, 0) + after)] if calendar else end
    return min(first, start), max(last, end)


def read_feature_frame(
    warehouse: Warehouse,
    feature_set: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    columns: list[str] | None = None,
    *,
    members_only: bool = False,
    ordered: bool = True,
) -> pl.DataFrame:
    """A date window of ``feature_set``'s table (``columns``, default all).

    ``members_only`` keeps the rows whose instrument is a member of the universe that day (table
    ``instruments``), the rows every handler keeps: the tables hold every instrument of the bars, and reading
    the others only to drop them cost more than half of a test segment's read. ``ordered=False`` leaves out
    the ``order by instrument, date``, for readers that order the rows themselves (sorting 360 float columns
    in DuckDB costs more than gathering them by sorted keys afterwards).
    """
    table = FEATURE_TABLES[feature_set]
    cols = "f.*" if not columns else ", ".join(["f.instrument", "f.date", *(f'f."{c}"' for c in columns)])
    where, params = [], []
    if start is not None:
        where.append("f.date >= ?")
        params.append(start)
    if end is not None:
        where.append("f.date <= ?")
        params.append(end)
    if members_only:
        where.append(member_condition("f"))
    clause = f" where {' and '.join(where)}" if where else ""
    order = " order by f.instrument, f.date" if ordered else ""
    return warehouse.query(f"select {cols} from {table} f{clause}{order}", params or None)
