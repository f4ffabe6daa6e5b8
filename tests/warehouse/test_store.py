"""The DuckDB layer: slice replacement is exact and atomic; a held lock gives a clear error."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
from pathlib import Path

import duckdb
import polars as pl
import pytest

from warehouse.store import Warehouse, WarehouseBusy


def _bars(days: list[int], instruments: list[str], close: float) -> pl.DataFrame:
    rows = [(i, dt.date(2021, 1, d), close) for i in instruments for d in days]
    return pl.DataFrame(rows, schema={"instrument": pl.Utf8, "date": pl.Date, "close": pl.Float64}, orient="row")


def test_replace_touches_only_its_slice(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    wh.replace("bars", _bars([4, 5, 6, 7], ["A", "B"], 1.0), date_range=(dt.date(2021, 1, 4), dt.date(2021, 1, 7)))
    wh.replace("bars", _bars([5, 6], ["A"], 2.0), date_range=(dt.date(2021, 1, 5), dt.date(2021, 1, 6)))
    out = wh.query("select instrument, date, close from bars order by all")
    assert out.height == 6  # B's rows on the 5th and 6th went with the slice
    assert out.filter(pl.col("close") == 2.0)["date"].to_list() == [dt.date(2021, 1, 5), dt.date(2021, 1, 6)]
    # Re-running the same write is idempotent.
    before = wh.query("select * from bars order by all")
    wh.replace("bars", _bars([5, 6], ["A"], 2.0), date_range=(dt.date(2021, 1, 5), dt.date(2021, 1, 6)))
    assert wh.query("select * from bars order by all").equals(before)


def test_rows_outside_the_slice_are_refused(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(
        ValueError, match="rows for bars span 2021-01-04..2021-01-09, outside the slice 2021-01-04..2021-01-07"
    ):
        wh.replace("bars", _bars([4, 9], ["A"], 1.0), date_range=(dt.date(2021, 1, 4), dt.date(2021, 1, 7)))


def test_failed_write_keeps_previous_rows(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.ensure_schema()
    wh.replace("bars", _bars([4, 5], ["A"], 1.0), date_range=(dt.date(2021, 1, 4), dt.date(2021, 1, 5)))
    dup = pl.concat([_bars([4], ["A"], 3.0), _bars([4], ["A"], 3.0)])  # violates the primary key
    with pytest.raises(duckdb.ConstraintException, match='duplicate key "A, 2021-01-04"'):
        wh.replace("bars", dup, date_range=(dt.date(2021, 1, 4), dt.date(2021, 1, 5)))
    assert wh.query("select close from bars order by date")["close"].to_list() == [1.0, 1.0]


def _hold_lock(path: str, ready: mp.Event, release: mp.Event) -> None:
    con = duckdb.connect(path)
    ready.set()
    release.wait(30)
    con.close()


def test_lock_held_by_another_process_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).ensure_schema()
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(path), ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(WarehouseBusy, match=r"locked by process \d+.*one writing process"):
            Warehouse(path, lock_timeout_s=0.5).replace("calendar", pl.DataFrame({"date": [dt.date(2021, 1, 4)]}))
    finally:
        release.set()
        proc.join(30)
    # Once the other process lets go, the write goes through.
    Warehouse(path, lock_timeout_s=5).replace("calendar", pl.DataFrame({"date": [dt.date(2021, 1, 4)]}))
