"""DuckDB storage: short-lived connections, atomic replace-a-slice writes, and a clear answer when another
process holds the file.

DuckDB lets one process write a database file at a time (and a read-only opener must wait for the writer to
close). Every connection here is opened for one unit of work and closed at once; opening retries while
another process holds the lock, then fails with a message naming the file and the holder.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from warehouse.schema import TABLES, TableSpec, ddl_for_frame, duck_type

_LOCK_PATTERN = re.compile(r"lock", re.IGNORECASE)


class WarehouseBusy(RuntimeError):
    """Another process kept the warehouse file locked for longer than the wait allowed."""


class Warehouse:
    def __init__(self, path: str | Path, lock_timeout_s: float = 300.0) -> None:
        self.path = Path(path).expanduser().resolve()
        self.lock_timeout_s = lock_timeout_s

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    # -- connections -------------------------------------------------------------------------------------
    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.path.exists():
            self.ensure_schema()
        con = self._open(read_only)
        try:
            yield con
        finally:
            con.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if not _LOCK_PATTERN.search(str(exc)):
                    raise
                if time.monotonic() >= deadline:
                    holder = re.search(r"PID (\d+)", str(exc))
                    who = f"process {holder.group(1)}" if holder else "another process"
                    raise WarehouseBusy(
                        f"warehouse {self.path} is locked by {who} (DuckDB allows one writing process); "
                        f"waited {self.lock_timeout_s:.0f} s. Let the other run finish, or run both in one "
                        "Dagster instance, whose 'warehouse' pool admits one writer at a time."
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)

    def ensure_schema(self) -> None:
        with self.connect() as con:
            for spec in TABLES.values():
                con.execute(spec.ddl)

    # -- reads -------------------------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        with self.connect(read_only=True) as con:
            return con.sql(sql, params=params).pl() if params else con.sql(sql).pl()

    def table_exists(self, table: str) -> bool:
        if not self.path.exists():
            return False
        with self.connect(read_only=True) as con:
            found = con.execute(
                "select count(*) from information_schema.tables where table_name = ?", [table]
            ).fetchone()
        return bool(found and found[0])

    def columns(self, table: str) -> list[str]:
        with self.connect(read_only=True) as con:
            rows = con.execute(
                "select column_name from information_schema.columns where table_name = ? order by ordinal_position",
                [table],
            ).fetchall()
        return [r[0] for r in rows]

    # -- writes ------------------------------------------------------------------------------------------
    def replace(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        date_range: tuple[dt.date, dt.date] | None = None,
        where: Mapping[str, Any] | None = None,
        date_column: str = "date",
        key: tuple[str, ...] | None = None,
        missing_before: dt.date | None = None,
        primary_key: bool = True,
    ) -> int:
        """Replace exactly one slice of ``table`` by ``frame`` in one transaction.

        The slice is the rows whose ``date_column`` lies in ``date_range`` (inclusive) and whose columns equal
        ``where``; with neither, the whole table. Rows of ``frame`` outside the slice are an error, so a write
        can never touch data it did not first delete. With ``missing_before``, the rows of ``frame`` dated before
        it are inserted in the same transaction only where the table has no row with their ``key`` yet (existing
        rows stay untouched; the gap's wide rows are copied only when some are missing). With ``primary_key=False`` a
        table this call creates does not declare ``key`` as its primary key: the writer keeps the rows unique
        (as the slice delete and the missing-only insert do), and DuckDB skips maintaining an index that makes
        replacing a wide slice several times slower. Returns the number of rows written in the slice.
        """
        where = dict(where or {})
        gap_rows = 0
        if missing_before is not None:
            if not key:
                raise ValueError(f"missing_before on {table} needs the key columns")
            in_gap = frame[date_column] < missing_before
            gap_rows = int(in_gap.sum())
            _check_dates(table, frame[date_column].filter(~in_gap), date_range)
            _check_slice(table, frame, None, where, date_column)
        else:
            _check_slice(table, frame, date_range, where, date_column)
        spec = TABLES.get(table) or TableSpec(
            table, ddl_for_frame(table, frame, key or (), primary_key=primary_key), key or ()
        )
        conditions, params = [], []
        if date_range is not None:
            conditions.append(f'"{date_column}" between ? and ?')
            params += [date_range[0], date_range[1]]
        for col, value in where.items():
            conditions.append(f'"{col}" = ?')
            params.append(value)
        predicate = " and ".join(conditions) or "true"
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                con.execute(spec.ddl)
                existing = {
                    r[0]
                    for r in con.execute(
                        "select column_name from information_schema.columns where table_name = ?", [table]
                    ).fetchall()
                }
                for name, dtype in frame.schema.items():
                    if name not in existing:
                        # New numeric fields of a source (e.g. "amount") widen the table.
                        con.execute(f'alter table "{table}" add column "{name}" {duck_type(dtype)}')
                con.execute(f'delete from "{table}" where {predicate}', params)
                if frame.height:
                    # The slice rows, then (with missing_before) the missing gap rows. The slice is split off in
                    # Polars: a filter inside DuckDB's insert leaves gaps in every scanned vector and made the
                    # insert of a wide window about 1.7x slower.
                    in_slice = frame.filter(~in_gap) if gap_rows else frame
                    con.register("_incoming", in_slice.to_arrow())
                    con.execute(f'insert into "{table}" by name select * from _incoming')
                    con.unregister("_incoming")
                    del in_slice
                if gap_rows:
                    # The anti-join reads only the gap's dates of the table.
                    match = " and ".join(f't."{k}" = g."{k}"' for k in key or ())
                    missing = f'not exists (select 1 from "{table}" t where {match} and t."{date_column}" < ?)'
                    # Usually every gap row is there already: find that out on the keys alone, and copy the
                    # gap's wide rows only when some are missing.
                    con.register("_gap_keys", frame.select(list(key or ())).filter(in_gap).to_arrow())
                    found = con.execute(
                        f"select count(*) from _gap_keys g where {missing}", [missing_before]
                    ).fetchall()[0][0]
                    con.unregister("_gap_keys")
                    if found:
                        con.register("_gap", frame.filter(in_gap).to_arrow())
                        con.execute(
                            f'insert into "{table}" by name select g.* from _gap g where {missing}',
                            [missing_before],
                        )
                        con.unregister("_gap")
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
        return frame.height - gap_rows

    def replace_tables(self, frames: Mapping[str, pl.DataFrame]) -> None:
        """Replace every row of each table of ``frames`` (tables declared in ``warehouse.schema``) in one
        transaction: rows written across tables together (say, the concepts and the line naming their source) are
        all there or, on a failure, the previous rows all are."""
        unknown = sorted(t for t in frames if t not in TABLES)
        if unknown:
            raise ValueError(f"replace_tables writes declared tables only; {unknown} are not in warehouse.schema")
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                for table, frame in frames.items():
                    con.execute(TABLES[table].ddl)
                    con.execute(f'delete from "{table}"')
                    if frame.height:
                        con.register("_incoming", frame.to_arrow())
                        con.execute(f'insert into "{table}" by name select * from _incoming')
                        con.unregister("_incoming")
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise

    def drop_primary_key(self, table: str) -> bool:
        """Rebuild ``table`` without its primary key, in one transaction (DuckDB cannot drop a constraint in
        place); the rows and the column order stay. Returns whether there was one to drop."""
        if not self.table_exists(table):
            return False
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                found = con.execute(
                    "select count(*) from duckdb_constraints() "
                    "where table_name = ? and constraint_type = 'PRIMARY KEY'",
                    [table],
                ).fetchone()
                if not (found and found[0]):
                    con.execute("rollback")
                    return False
                con.execute(f'create table "{table}__rebuild" as select * from "{table}"')
                con.execute(f'drop table "{table}"')
                con.execute(f'alter table "{table}__rebuild" rename to "{table}"')
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
        return True

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        with self.connect() as con:
            con.execute(sql, params or [])


def _check_dates(table: str, dates: pl.Series, date_range: tuple[dt.date, dt.date] | None) -> None:
    if date_range is not None and len(dates):
        lo, hi = dates.min(), dates.max()
        if lo < date_range[0] or hi > date_range[1]:
            raise ValueError(
                f"rows for {table} span {lo}..{hi}, outside the slice {date_range[0]}..{date_range[1]} being replaced"
            )


def _check_slice(
    table: str,
    frame: pl.DataFrame,
    date_range: tuple[dt.date, dt.date] | None,
    where: Mapping[str, Any],
    date_column: str,
) -> None:
    if date_range is not None and frame.height:
        lo, hi = frame[date_column].min(), frame[date_column].max()
        if lo < date_range[0] or hi > date_range[1]:
            raise ValueError(
                f"rows for {table} span {lo}..{hi}, outside the slice {date_range[0]}..{date_range[1]} being replaced"
            )
    for col, value in where.items():
        if frame.height and col in frame.columns and frame.filter(pl.col(col) != value).height:
            raise ValueError(f"rows for {table} have {col} other than {value!r}, outside the slice being replaced")
