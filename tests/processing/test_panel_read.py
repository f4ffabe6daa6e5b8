"""The handlers' read of a feature window (``workflow.panels.read_panel``): members' rows only, in any order, and
the same panel as reading every row in (instrument, date) order."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from features import catalog
from processing.panel import panel_from_frames
from warehouse.feature_store import read_feature_frame
from warehouse.store import Warehouse
from workflow.panels import read_membership, read_panel

DAYS = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(20)]


def _warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.ensure_schema()
    membership = pl.DataFrame(
        {
            "universe": ["u"] * 3,
            "instrument": ["A", "B", "B"],
            "start_date": [DAYS[0], DAYS[4], DAYS[15]],
            "end_date": [DAYS[9], DAYS[11], DAYS[19]],
        }
    )
    wh.replace("instruments", membership)
    rng = np.random.default_rng(0)
    # C is never a member; rows are written in no particular order, as windows append them.
    keys = [(inst, d) for d in DAYS for inst in ("C", "B", "A")]
    n = len(keys)
    features = pl.DataFrame(
        {
            "instrument": [k[0] for k in keys],
            "date": [k[1] for k in keys],
            "KMID": rng.normal(size=n).astype(np.float32),
            "KLEN": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)).astype(np.float32),
        }
    )
    wh.replace(catalog.get("alpha158").table, features, key=("instrument", "date"), primary_key=False)
    labels = features.select("instrument", "date", pl.col("KMID").alias("LABEL0") * 0.01)
    wh.replace(catalog.label_set().table, labels, key=("instrument", "date"), primary_key=False)
    return wh


def test_read_panel_keeps_members_only(tmp_path: Path) -> None:
    wh = _warehouse(tmp_path)
    features, labels = read_panel(wh, "alpha158", DAYS[2], DAYS[17])
    got = set(features.select("instrument", "date").iter_rows())
    member = {("A", d) for d in DAYS[2:10]} | {("B", d) for d in DAYS[4:12] + DAYS[15:18]}
    assert got == member
    assert set(labels.select("instrument", "date").iter_rows()) == member


def test_panel_from_the_member_read_equals_the_full_ordered_read(tmp_path: Path) -> None:
    wh = _warehouse(tmp_path)
    membership = read_membership(wh)
    full = read_feature_frame(wh, "alpha158", DAYS[2], DAYS[17])
    full_labels = read_feature_frame(wh, catalog.label_set().name, DAYS[2], DAYS[17])
    assert full["instrument"].n_unique() == 3  # the non-member is in the table
    features, labels = read_panel(wh, "alpha158", DAYS[2], DAYS[17])
    cols = ["KMID", "KLEN"]
    old = panel_from_frames(full, full_labels, feature_columns=cols, membership=membership)
    new = panel_from_frames(features, labels, feature_columns=cols, membership=membership)
    for name in ("features", "labels", "dates", "inst_codes", "instrument_names", "row_ids"):
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name), err_msg=name)
    assert new.features.tobytes() == old.features.tobytes()  # NaN included, bit for bit
