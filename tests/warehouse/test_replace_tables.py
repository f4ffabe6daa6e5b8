"""Warehouse.replace_tables: several declared tables replaced in one transaction, all or nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from warehouse.store import Warehouse


def _source_row(source: str | None, version: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"source": [source], "origin": ["source"], "concepts_version": [version]},
        schema={"source": pl.Utf8, "origin": pl.Utf8, "concepts_version": pl.Utf8},
    )


def test_tables_are_replaced_together_or_not_at_all(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    first = pl.DataFrame({"instrument": ["A", "A", "B"], "concept": ["x", "y", "x"]})
    wh.replace_tables({"concepts": first, "concept_source": _source_row("file one", "v1")})
    assert wh.query("select * from concepts order by instrument, concept").equals(first)
    second = pl.DataFrame({"instrument": ["C"], "concept": ["z"]})
    wh.replace_tables({"concepts": second, "concept_source": _source_row("file two", "v2")})
    assert wh.query("select * from concepts").equals(second)  # the whole table replaced, not appended to
    assert wh.query("select source, concepts_version from concept_source").rows() == [("file two", "v2")]

    # The second table's write fails (a null source): the first table's new rows are rolled back too.
    third = pl.DataFrame({"instrument": ["D"], "concept": ["w"]})
    with pytest.raises(duckdb.ConstraintException):
        wh.replace_tables({"concepts": third, "concept_source": _source_row(None, "v3")})
    assert wh.query("select * from concepts").equals(second)
    assert wh.query("select source, concepts_version from concept_source").rows() == [("file two", "v2")]


def test_only_declared_tables(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    with pytest.raises(ValueError, match=r"\['mystery'\] are not in warehouse.schema"):
        wh.replace_tables({"mystery": pl.DataFrame({"a": [1]})})
