"""The expression engine against the numpy engine (features.registry.compute_features) on the real CSI300 data
for one year (skipped when ../shared/data/qlib_cn is absent)."""

from __future__ import annotations

import polars as pl
import pytest

from features import compute_features
from features.compare import compare_frames, row_mismatch, summarize
from features.expressions import compute_columns
from features.qlib_sets import LABEL_COLUMNS as LABEL
from features.qlib_sets import alpha158_columns as alpha158
from features.qlib_sets import alpha360_columns as alpha360

pytestmark = pytest.mark.realdata
SETS = {"alpha158": alpha158(), "alpha360": alpha360(), "label": LABEL}
START, END = "2019-01-01", "2019-12-31"


@pytest.fixture(scope="module")
def real(qlib_cn_dir):
    from warehouse.sources.qlib_bin import read_calendar, read_qlib_bars

    lines = (qlib_cn_dir / "instruments" / "csi300.txt").read_text().splitlines()
    names = sorted({line.split()[0].upper() for line in lines if line.strip()})
    names = [n for n in names if (qlib_cn_dir / "features" / n.lower() / "close.day.bin").is_file()]
    return read_qlib_bars(qlib_cn_dir, names), read_calendar(qlib_cn_dir)


@pytest.mark.parametrize("name", list(SETS))
def test_matches_the_numpy_engine_on_a_year_of_csi300(name, real):
    bars, cal = real
    ours = compute_columns(SETS[name], bars, cal, START, END)
    ref = compute_features(name, bars, cal, START, END)
    assert row_mismatch(ours, ref) == (0, 0)
    assert ours.select("instrument", "date").equals(ref.select("instrument", "date"))
    overall = summarize(compare_frames(ours, ref, [c for c, _ in SETS[name]], rtol=1e-4, atol=1e-6))
    assert overall["null_mismatch"] == 0
    assert overall["inf_mismatch"] == 0
    assert overall["agree_frac"] >= (0.9999 if name == "alpha158" else 1.0)
    assert ours.height > 50_000 and ours.filter(pl.col("date") == ours["date"].min()).height > 250
