"""Basic invariants on a few instruments of the real CSI300 data (skipped when the data is absent)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features import ALPHA360_COLUMNS, compute_features, lookback
from tests.features.std_residue import assert_same_but_residue, constant_windows

pytestmark = pytest.mark.realdata
INSTRUMENTS = ["SH600000", "SH600519", "SZ000001", "SZ000002", "SH601318", "SZ000063"]
FIELDS = ("open", "high", "low", "close", "volume", "factor")


def read_bin_bars(root: Path, instruments: list[str]) -> tuple[pl.DataFrame, list[dt.date]]:
    """Tiny Qlib-bin reader: every row of each file (NaN rows kept out, like a bars table)."""
    cal = [dt.date.fromisoformat(x.strip()) for x in (root / "calendars" / "day.txt").read_text().split()]
    frames = []
    for inst in instruments:
        folder = root / "features" / inst.lower()
        if not folder.is_dir():
            continue
        cols = {}
        for f in FIELDS:
            raw = np.fromfile(folder / f"{f}.day.bin", dtype="<f4")
            cols[f] = (int(raw[0]), raw[1:])
        start, n = cols["close"][0], cols["close"][1].size
        frame = pl.DataFrame(
            {
                "instrument": [inst] * n,
                "date": cal[start : start + n],
                **{f: cols[f][1].astype(np.float64) for f in FIELDS},
            }
        )
        frames.append(frame.filter(pl.col("close").is_not_nan()))
    return pl.concat(frames), cal


@pytest.fixture(scope="module")
def real(qlib_cn_dir):
    bars, cal = read_bin_bars(qlib_cn_dir, INSTRUMENTS)
    if bars.is_empty():
        pytest.skip("none of the chosen instruments is in the data")
    out = {name: compute_features(name, bars, cal) for name in ("alpha158", "alpha360", "label")}
    return bars, cal, out


def test_rows_span_each_instrument(real):
    bars, _, out = real
    spans = bars.group_by("instrument").agg(pl.col("date").min().alias("f"), pl.col("date").max().alias("l"))
    for name, frame in out.items():
        got = frame.group_by("instrument").agg(pl.col("date").min().alias("f"), pl.col("date").max().alias("l"))
        assert got.sort("instrument").equals(spans.sort("instrument")), name
        assert frame.height >= bars.height
        assert frame.select("instrument", "date").is_duplicated().sum() == 0


def test_value_invariants(real):
    _, _, out = real
    a158, a360 = out["alpha158"], out["alpha360"]
    assert a158["VWAP0"].null_count() == a158.height  # the real data has no vwap
    assert all(a360[c].null_count() == a360.height for c in ALPHA360_COLUMNS if c.startswith("VWAP"))
    close0 = a360["CLOSE0"].drop_nulls()
    assert close0.len() > 0 and (close0 == 1.0).all()
    checks = {
        "KLEN": (0.0, 1.0),
        "RANK20": (0.0, 1.0),
        "IMAX60": (0.0, 1.0),
        "IMIN5": (0.0, 1.0),
        "RSQR10": (0.0, 1.0 + 1e-6),
        "CNTP60": (0.0, 1.0),
        "SUMP20": (0.0, 1.0),
        "RSV30": (0.0, 1.0 + 1e-6),
        "CORR20": (-1.0 - 1e-6, 1.0 + 1e-6),
    }
    for col, (lo, hi) in checks.items():
        v = a158[col].drop_nulls().drop_nans()
        assert v.len() > 0, col
        assert v.min() >= lo and v.max() <= hi, col
    ok = a158.drop_nulls(["QTLU20", "QTLD20", "MAX20", "MIN20"])
    assert (ok["QTLD20"] <= ok["QTLU20"]).all() and (ok["MIN20"] <= ok["MAX20"]).all()
    cnt = a158.drop_nulls(["CNTP10", "CNTN10"])
    assert ((cnt["CNTP10"] + cnt["CNTN10"]) <= 1.0 + 1e-6).all()


def test_label_is_the_float32_future_return(real):
    bars, cal, out = real
    inst = bars["instrument"][0]
    close = bars.filter(pl.col("instrument") == inst)["close"].to_numpy().astype(np.float32)
    label = out["label"].filter(pl.col("instrument") == inst)["LABEL0"]
    # the first instrument is on every day of its span here (no missing rows in the bin file)
    assert label.len() == close.size
    want = close[2:] / close[1:-1] - np.float32(1)
    np.testing.assert_array_equal(label[:-2].fill_null(np.nan).to_numpy(), want)


def test_incremental_equals_full_on_real_data(real):
    bars, cal, out = real
    start, end = dt.date(2018, 3, 1), dt.date(2018, 6, 29)
    idx = next(i for i, d in enumerate(cal) if d >= start)
    trimmed = bars.filter(pl.col("date") >= cal[idx - lookback("alpha158")])
    part = compute_features("alpha158", trimmed, cal, start=start, end=end)
    full = out["alpha158"].filter(pl.col("date").is_between(start, end))
    differing = assert_same_but_residue(part, full, constant_windows(bars, cal, start, end))
    assert differing > 0  # these instruments have suspensions in the window: the residue is exercised
