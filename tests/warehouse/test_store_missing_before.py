"""``Warehouse.replace(missing_before=...)``: one frame carries the slice and the add-only-where-missing rows
before it (split in DuckDB), as a feature window run writes them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from warehouse.store import Warehouse

KEY = ("instrument", "date")


def _rows(days: list[int], instruments: list[str], value: float) -> pl.DataFrame:
    rows = [(i, dt.date(2021, 1, d), value) for i in instruments for d in days]
    return pl.DataFrame(rows, schema={"instrument": pl.Utf8, "date": pl.Date, "F": pl.Float32}, orient="row")


def test_missing_before_adds_only_missing_rows_and_replaces_the_slice(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.replace("feat", _rows([4, 5, 6, 7], ["A"], 1.0), date_range=(dt.date(2021, 1, 4), dt.date(2021, 1, 7)), key=KEY)
    # B appears (its rows on the 4th/5th are missing); A's existing rows before the 6th must stay 1.0.
    frame = _rows([4, 5, 6, 7], ["A", "B"], 2.0)
    window = (dt.date(2021, 1, 6), dt.date(2021, 1, 7))
    written = wh.replace("feat", frame, date_range=window, key=KEY, missing_before=window[0])
    assert written == 4  # the slice rows, not the gap rows
    out = wh.query("select instrument, date, F from feat order by all")
    got = {(r["instrument"], r["date"].day): r["F"] for r in out.to_dicts()}
    assert got == {
        ("A", 4): 1.0, ("A", 5): 1.0, ("A", 6): 2.0, ("A", 7): 2.0,
        ("B", 4): 2.0, ("B", 5): 2.0, ("B", 6): 2.0, ("B", 7): 2.0,
    }  # fmt: skip


def test_missing_before_rejects_slice_rows_outside_the_range(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    wh.replace("feat", _rows([4], ["A"], 1.0), date_range=(dt.date(2021, 1, 4), dt.date(2021, 1, 4)), key=KEY)
    with pytest.raises(ValueError, match="outside the slice"):
        wh.replace(
            "feat",
            _rows([5, 8], ["A"], 2.0),
            date_range=(dt.date(2021, 1, 5), dt.date(2021, 1, 7)),
            key=KEY,
            missing_before=dt.date(2021, 1, 5),
        )
    assert wh.query("select F from feat")["F"].to_list() == [1.0]  # nothing written
