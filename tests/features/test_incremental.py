"""A range computed from only ``lookback`` days of history equals the same range of a full-history run."""

from __future__ import annotations

import polars as pl
import pytest

from features import compute_features, horizon, lookback
from tests.features.std_residue import assert_same_but_residue, constant_windows

SETS = ("alpha158", "alpha360", "label")


def _assert_same(a: pl.DataFrame, b: pl.DataFrame, bars: pl.DataFrame, cal) -> None:
    # the per-instrument centring constant depends on the history given, so last-bit differences are allowed;
    # Alpha158's Std columns may also differ on windows of equal values (Qlib's residue, see std_residue)
    flat = constant_windows(bars, cal, a["date"].min(), a["date"].max()) if "VSTD5" in a.columns else None
    assert_same_but_residue(a, b, flat)


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("start_idx,end_idx", [(100, 130), (61, 149), (95, 95)])
def test_range_with_lookback_equals_full_history(name, start_idx, end_idx, fixture_bars, fixture_calendar):
    cal = fixture_calendar
    start, end = cal[start_idx], cal[end_idx]
    full = compute_features(name, fixture_bars, cal).filter(pl.col("date").is_between(start, end))
    first = cal[max(0, start_idx - lookback(name))]
    last = cal[min(len(cal) - 1, end_idx + horizon("label"))]
    trimmed = fixture_bars.filter(pl.col("date").is_between(first, last))
    part = compute_features(name, trimmed, cal, start=start, end=end)
    _assert_same(part, full, fixture_bars, cal)


@pytest.mark.parametrize("name", SETS)
def test_whole_history_as_lazyframe_with_a_range(name, fixture_bars, fixture_calendar):
    """Only the needed rows are read, and instruments keep their true first day even when the look-back window
    starts inside a run of missing rows (SH600002 has none on days 20-27; start 80 looks back to day 20)."""
    cal = fixture_calendar
    start, end = cal[80], cal[85]
    full = compute_features(name, fixture_bars, cal).filter(pl.col("date").is_between(start, end))
    part = compute_features(name, fixture_bars.lazy(), cal, start=start, end=end)
    _assert_same(part, full, fixture_bars, cal)


def test_too_little_history_changes_the_first_values(fixture_bars, fixture_calendar):
    """Sanity check that the test above can fail: one day short of the look-back alters ROC60/CORD60."""
    cal = fixture_calendar
    start = cal[100]
    full = compute_features("alpha158", fixture_bars, cal).filter(pl.col("date") == start)
    short = fixture_bars.filter(pl.col("date") >= cal[100 - lookback("alpha158") + 1])
    part = compute_features("alpha158", short, cal, start=start, end=start)
    assert not part["ROC60"].equals(full["ROC60"])
