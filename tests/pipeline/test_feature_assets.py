"""Feature and label partitions: a daily run computes one day from its lookback and equals the full pass."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from features import horizon
from tests.helpers import materialize_selection, range_tags, settings_for
from warehouse.feature_store import trading_days
from warehouse.store import Warehouse

TABLES = ("features_alpha158", "features_alpha360", "labels")
SETS = dict(zip(TABLES, ("alpha158", "alpha360", "label"), strict=True))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("features")
    settings = settings_for(tmp)
    result = materialize_selection(
        settings, "group:bars or group:features", tags=range_tags("2020-01-02", "2020-12-31")
    )
    assert result.success
    wh = Warehouse(settings.warehouse)
    return settings, wh, {t: wh.query(f"select * from {t} order by instrument, date") for t in TABLES}


def test_tables_have_qlib_columns(built) -> None:
    from features import ALPHA158_COLUMNS, ALPHA360_COLUMNS

    _, wh, frames = built
    assert frames["features_alpha158"].columns == ["instrument", "date", *ALPHA158_COLUMNS]
    assert frames["features_alpha360"].columns == ["instrument", "date", *ALPHA360_COLUMNS]
    assert frames["labels"].columns == ["instrument", "date", "LABEL0"]
    bars = wh.query("select instrument, date from bars")
    # Every bar has a feature row (suspended days inside a listing have rows too, as in Qlib).
    assert bars.join(frames["features_alpha158"], on=["instrument", "date"], how="anti").height == 0


def test_daily_partition_recomputes_one_day_identically(built) -> None:
    settings, wh, frames = built
    day = "2020-09-15"
    result = materialize_selection(
        settings, "key:features_alpha158 or key:features_alpha360 or key:labels", partition_key=day
    )
    assert result.success
    calendar = trading_days(wh)
    for table in TABLES:
        meta = result.asset_materializations_for_node(table)[0].metadata
        assert meta["date_range"].value == f"{day}..{day}"
        after = wh.query(f"select * from {table} order by instrument, date")
        assert after.equals(frames[table]), table
        # The rows written: the day's, and for the labels the days before it whose label reads the day's bars.
        i = calendar.index(dt.date.fromisoformat(day))
        written = after.filter(pl.col("date").is_between(calendar[i - horizon(SETS[table])], calendar[i]))
        assert meta["rows"].value == written.height > 0, table
        assert meta["instruments"].value == written["instrument"].n_unique(), table
    # The label of the last days stays null: the future bars do not exist.
    last = frames["labels"].filter(pl.col("date") == frames["labels"]["date"].max())
    assert last["LABEL0"].null_count() == last.height


def _primary_keys(wh: Warehouse, table: str) -> int:
    return wh.query(
        "select count(*) as n from duckdb_constraints() "
        f"where table_name = '{table}' and constraint_type = 'PRIMARY KEY'"
    )["n"][0]


def _duplicates(wh: Warehouse, table: str) -> int:
    return wh.query(
        f"select count(*) as n from (select instrument, date from {table} group by all having count(*) > 1)"
    )["n"][0]


def test_rewritten_range_keeps_rows_unique_without_a_primary_key(built, tmp_path) -> None:
    """Feature tables declare no primary key (DuckDB's index made window writes several times slower); the
    writes keep (instrument, date) unique: a range written again, overlapping earlier windows, changes nothing."""
    import shutil

    settings, wh, frames = built
    copy = tmp_path / "wh.duckdb"
    shutil.copy(settings.warehouse, copy)
    settings = type(settings)(**{**settings.__dict__, "warehouse": str(copy)})
    again = Warehouse(copy)
    assert materialize_selection(settings, "group:features", tags=range_tags("2020-06-01", "2020-07-31")).success
    for table in TABLES:
        assert _primary_keys(again, table) == 0, table
        assert _duplicates(again, table) == 0, table
        assert again.query(f"select * from {table} order by instrument, date").equals(frames[table]), table


def test_warehouse_written_with_a_primary_key_is_migrated(built, tmp_path) -> None:
    """A warehouse from before (feature tables with a primary key) loses the key at the first window write;
    its rows stay, and the window is replaced as before."""
    import datetime as dt

    from workflow.features import build_feature_window

    _, wh, frames = built
    old = Warehouse(tmp_path / "old.duckdb")
    with wh.connect(read_only=True) as src:
        for table in ("calendar", "bars"):
            old.replace(table, src.sql(f"select * from {table}").pl())
    old.replace("features_alpha158", frames["features_alpha158"], key=("instrument", "date"))
    assert _primary_keys(old, "features_alpha158") == 1
    build_feature_window(old, "alpha158", dt.date(2020, 10, 1), dt.date(2020, 10, 30))
    assert _primary_keys(old, "features_alpha158") == 0
    assert _duplicates(old, "features_alpha158") == 0
    after = old.query("select * from features_alpha158 order by instrument, date")
    assert after.columns == frames["features_alpha158"].columns
    assert after.equals(frames["features_alpha158"])
