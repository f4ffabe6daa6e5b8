"""Alpha158, Alpha360 and LABEL0 written as Qlib's expression texts, evaluated by ``compute_columns``, against
pyqlib 0.9.7's own output on the committed synthetic market (tests/fixtures/features), with the tolerances
tests/features/test_parity_fixture.py holds the numpy engine to."""

from __future__ import annotations

import polars as pl
import pytest

from features.compare import compare_frames, row_mismatch, summarize
from features.expressions import compute_columns
from features.qlib_sets import LABEL_COLUMNS as LABEL
from features.qlib_sets import alpha158_columns as alpha158
from features.qlib_sets import alpha360_columns as alpha360

SETS = {"alpha158": alpha158(), "alpha360": alpha360(), "label": LABEL}


@pytest.fixture(scope="module")
def ours(fixture_bars, fixture_calendar) -> dict[str, pl.DataFrame]:
    return {name: compute_columns(cols, fixture_bars, fixture_calendar) for name, cols in SETS.items()}


@pytest.mark.parametrize("name", list(SETS))
def test_rows_columns_and_dtypes_match_qlib(name, ours, qlib_reference):
    mine, ref = ours[name], qlib_reference[name]
    assert mine.columns == ref.columns == ["instrument", "date", *[c for c, _ in SETS[name]]]
    assert row_mismatch(mine, ref) == (0, 0)
    assert mine.select("instrument", "date").equals(ref.select("instrument", "date"))
    assert all(dt == pl.Float32 for dt in mine.dtypes[2:])


@pytest.mark.parametrize("name", list(SETS))
def test_values_and_missing_patterns_match_qlib(name, ours, qlib_reference):
    columns = [c for c, _ in SETS[name]]
    stats = compare_frames(ours[name], qlib_reference[name], columns, rtol=1e-4, atol=1e-6)
    overall = summarize(stats)
    assert overall["null_mismatch"] == 0
    assert overall["inf_mismatch"] == 0
    assert overall["agree_frac"] >= 0.9999
    # Only WVMA may differ: on an all-zero window Qlib divides pandas' online-variance residue by 1e-12.
    differing = stats.filter(pl.col("agree") < pl.col("cells"))["column"].to_list()
    assert all(c.startswith("WVMA") for c in differing), differing
    if name != "alpha158":
        assert overall["agree_frac"] == 1.0


def test_most_cells_are_bit_identical(ours, qlib_reference):
    """Beyond the tolerance: Qlib's float32 arithmetic is reproduced exactly for nearly every cell."""
    for name, cols in SETS.items():
        stats = compare_frames(ours[name], qlib_reference[name], [c for c, _ in cols], rtol=0.0, atol=0.0)
        assert summarize(stats)["agree_frac"] >= 0.999, name
