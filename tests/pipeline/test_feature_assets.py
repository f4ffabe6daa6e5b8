"""Feature and label partitions: a daily run computes one day from its lookback and equals the full pass."""

from __future__ import annotations

import polars as pl
import pytest

from tests.helpers import materialize_selection, range_tags, settings_for
from warehouse.store import Warehouse

TABLES = ("features_alpha158", "features_alpha360", "labels")


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
    for table in TABLES:
        meta = result.asset_materializations_for_node(table)[0].metadata
        assert meta["date_range"].value == f"{day}..{day}"
        after = wh.query(f"select * from {table} order by instrument, date")
        assert after.equals(frames[table]), table
    # The label of the last days stays null: the future bars do not exist.
    last = frames["labels"].filter(pl.col("date") == frames["labels"]["date"].max())
    assert last["LABEL0"].null_count() == last.height
