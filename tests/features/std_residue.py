"""Where a window run may differ from a full-history run: Alpha158's Std columns on windows of equal values.

Qlib's Std / Var carry pandas' running-sum residue there, which depends on the first day of the series (the
query's start minus the column's reach), so two runs with different starts differ on those cells only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl

from features.expressions import compute_columns

# The input of each Std column family of Alpha158.
STD_INPUTS = {"STD": "$close", "VSTD": "$volume", "WVMA": "Abs($close/Ref($close, 1)-1)*$volume"}
WINDOWS = (5, 10, 20, 30, 60)


def constant_windows(bars: pl.DataFrame, calendar: Sequence[dt.date], start: dt.date, end: dt.date) -> pl.DataFrame:
    """instrument, date, then per Std column of Alpha158 whether its input window holds equal values only."""
    spread = [(f"{p}{d}", f"Max({x}, {d}) - Min({x}, {d})") for p, x in STD_INPUTS.items() for d in WINDOWS]
    out = compute_columns(spread, bars, calendar, start=start, end=end)
    return out.with_columns(pl.col(name) == 0 for name, _ in spread)


def assert_same_but_residue(part: pl.DataFrame, full: pl.DataFrame, flat: pl.DataFrame | None) -> int:
    """``part`` equals ``full`` (1e-6 rel / 1e-9 abs, same nulls) except on ``flat``'s constant windows of the
    Std columns; returns how many cells differed there."""
    assert part.columns == full.columns
    assert part.select("instrument", "date").equals(full.select("instrument", "date"))
    if flat is not None:
        assert flat.select("instrument", "date").equals(part.select("instrument", "date"))
    allowed = 0
    for col in part.columns[2:]:
        assert part[col].is_null().equals(full[col].is_null()), col  # identical missing pattern
        a, b = part[col].fill_null(np.nan).to_numpy(), full[col].fill_null(np.nan).to_numpy()
        bad = ~np.isclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True)
        if flat is not None and col in flat.columns:
            on_flat = bad & flat[col].fill_null(False).to_numpy()
            allowed += int(on_flat.sum())
            bad &= ~on_flat
        assert not bad.any(), f"{col}: {bad.sum()} cells differ, e.g. {a[bad][:3]} vs {b[bad][:3]}"
    return allowed
