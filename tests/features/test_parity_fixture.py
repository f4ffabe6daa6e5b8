"""Our features against pyqlib 0.9.7's output on the committed synthetic market (no pyqlib needed here)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from features import ALPHA158_COLUMNS, ALPHA360_COLUMNS, LABEL_COLUMNS, compute_features
from features.compare import compare_frames, row_mismatch, summarize

SETS = {"alpha158": ALPHA158_COLUMNS, "alpha360": ALPHA360_COLUMNS, "label": LABEL_COLUMNS}


@pytest.fixture(scope="module")
def ours(fixture_bars, fixture_calendar) -> dict[str, pl.DataFrame]:
    return {name: compute_features(name, fixture_bars, fixture_calendar) for name in SETS}


@pytest.mark.parametrize("name", list(SETS))
def test_columns_rows_and_dtypes_match_qlib(name, ours, qlib_reference):
    mine, ref = ours[name], qlib_reference[name]
    assert mine.columns == ["instrument", "date", *SETS[name]]
    assert mine.columns == ref.columns
    assert row_mismatch(mine, ref) == (0, 0)
    assert mine.select("instrument", "date").equals(ref.select("instrument", "date"))  # same (instrument, date) order
    assert all(dt == pl.Float32 for dt in mine.select(SETS[name]).dtypes)


@pytest.mark.parametrize("name", list(SETS))
def test_values_and_missing_patterns_match_qlib(name, ours, qlib_reference):
    stats = compare_frames(ours[name], qlib_reference[name], SETS[name], rtol=1e-4, atol=1e-6)
    overall = summarize(stats)
    assert overall["null_mismatch"] == 0
    assert overall["inf_mismatch"] == 0
    assert overall["agree_frac"] >= 0.9999
    # Only WVMA may differ: on an all-zero window Qlib divides pandas' online-variance residue by 1e-12.
    differing = stats.filter(pl.col("agree") < pl.col("cells"))["column"].to_list()
    assert all(c.startswith("WVMA") for c in differing), differing


def test_differing_wvma_cells_are_pandas_variance_residue(ours, qlib_reference):
    """Where WVMA differs, the window is all zeros: the exact answer (ours) is 0, Qlib's is residue / 1e-12."""
    cols = [c for c in ALPHA158_COLUMNS if c.startswith("WVMA")]
    joined = ours["alpha158"].join(qlib_reference["alpha158"], on=["instrument", "date"], suffix="_q")
    for col in cols:
        a = joined[col].fill_null(np.nan).to_numpy()
        b = joined[f"{col}_q"].to_numpy()
        bad = ~((np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= 1e-6 + 1e-4 * np.abs(b)))
        assert np.all(a[bad] == 0.0)
        assert np.all(np.abs(b[bad]) > 1e3)


def test_most_cells_are_bit_identical(ours, qlib_reference):
    """Beyond the tolerance: Qlib's float32 arithmetic is reproduced exactly for nearly every cell."""
    for name, cols in SETS.items():
        stats = compare_frames(ours[name], qlib_reference[name], cols, rtol=0.0, atol=0.0)
        assert summarize(stats)["agree_frac"] >= 0.999, name
