"""Cell-by-cell comparison of two feature frames (ours against a reference such as Qlib's own output).

A cell agrees when both sides are missing (null or NaN), both are the same infinity, or both are finite and
within ``atol + rtol * |reference|``. Missing-value and infinity patterns are also counted separately.
"""

from __future__ import annotations

import numpy as np
import polars as pl

KEYS = ["instrument", "date"]


def _values(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()


def compare_frames(
    ours: pl.DataFrame, reference: pl.DataFrame, columns: list[str], rtol: float = 1e-4, atol: float = 1e-6
) -> pl.DataFrame:
    """One row per column: cells, agreeing cells, missing/inf pattern mismatches and the largest errors.

    Rows are matched on (instrument, date); rows present on one side only are reported by ``row_mismatch``.
    """
    joined = ours.select(KEYS + columns).join(reference.select(KEYS + columns), on=KEYS, how="inner", suffix="__ref")
    stats = []
    for col in columns:
        a, b = _values(joined, col), _values(joined, f"{col}__ref")
        na, nb = np.isnan(a), np.isnan(b)
        ia, ib = np.isinf(a), np.isinf(b)
        finite = ~(na | nb | ia | ib)
        err = np.abs(a[finite] - b[finite])
        close_finite = err <= atol + rtol * np.abs(b[finite])
        same_inf = ia & ib & (a == b)
        agree = (na & nb) | same_inf
        agree[finite] = close_finite
        rel = err / np.maximum(np.abs(b[finite]), 1e-300)
        stats.append(
            {
                "column": col,
                "cells": a.size,
                "agree": int(agree.sum()),
                "null_mismatch": int((na != nb).sum()),
                "inf_mismatch": int(((ia != ib) | (ia & ib & (a != b))).sum()),
                "max_abs_err": float(err.max()) if err.size else 0.0,
                "max_rel_err": float(rel[err > atol].max()) if (err > atol).any() else 0.0,
            }
        )
    return pl.DataFrame(stats).with_columns((pl.col("agree") / pl.col("cells")).alias("agree_frac"))


def row_mismatch(ours: pl.DataFrame, reference: pl.DataFrame) -> tuple[int, int]:
    """(rows only in ours, rows only in the reference), matched on (instrument, date)."""
    a, b = ours.select(KEYS), reference.select(KEYS)
    return a.join(b, on=KEYS, how="anti").height, b.join(a, on=KEYS, how="anti").height


def summarize(stats: pl.DataFrame) -> dict[str, float]:
    """Overall agreement of a ``compare_frames`` result."""
    cells = int(stats["cells"].sum())
    return {
        "cells": cells,
        "agree_frac": float(stats["agree"].sum() / cells) if cells else 1.0,
        "null_mismatch": int(stats["null_mismatch"].sum()),
        "inf_mismatch": int(stats["inf_mismatch"].sum()),
        "worst_column_frac": float(stats["agree_frac"].min()) if stats.height else 1.0,
    }
