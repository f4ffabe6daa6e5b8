"""The only numpy (and pandas) in the engine, each through ``map_batches``: ``Log`` and ``Power`` over whole
columns, ``Std`` and ``Var`` over a chunk's whole column (pandas' kernel), and the expanding (window 0) ``Mad``
and ``EMA`` over one instrument at a time.

``Log``/``Power``: Qlib computes them with numpy's own float32/float64 routines, which are not correctly
rounded; Polars' ``log`` and ``pow`` differ from them in the last bit on most float32 cells (94 % for ``log`` on
random prices; 7.6 % even when computed in float64 and rounded), so nothing in Polars reaches Qlib's numbers bit
for bit. Both are element-wise, so a batch is any slice of the column; the cost is one numpy pass over the column
(about 5 ms per million float32 cells for ``log``), measured in bench/bench_expressions.py.

Expanding ``Mad`` and ``EMA``: quadratic by definition (every day re-weights or re-centres all the days so far).
Polars reaches the same numbers only through a per-window evaluation (``Expr.rolling`` / ``cumulative_eval``)
costing microseconds per window on top of the O(L) work: 0.6 s (Mad) and 1.7 s (EMA) per 4000-day instrument
against Qlib's 0.13 s. Here each day is folded into all the later days' sums at once (one vector operation per
day): about 25 ms (Mad) and 30 ms (EMA) per 4000-day instrument. The caller evaluates them inside
``.over(instrument)``, so each batch is one instrument's series (see ``features.expressions.rolling``).

``Std`` and ``Var``: Qlib calls pandas' rolling var, an online (Welford) update that adds and removes one value
at a time from the instrument's first day on. On a window whose values are all equal after different ones (a
suspension carried forward with volume 0) its result is not 0 but the residue that the running sums kept, and
Alpha158's VSTD / WVMA divide that by 1e-12 (values of 1e8 .. 1e13 that RobustZScoreNorm then clips to +3).
Polars' rolling variance is exact there (0). Only pandas' own kernel gives Qlib's residue, so both operators run
it: one call over the whole column of a chunk with each row's window bounds confined to its instrument (a new
instrument starts a fresh sum, as a fresh series does in Qlib). About 35 ms per 2.6 M rows, Polars' own rolling
std takes 45 ms. The residue depends on where the series starts. Qlib's starts on the first day its query loads
(the query's start minus the column's reach; the Std's input has its first value its own reach later), and so
does ours when the engine is given a ``start``; without one, on the instrument's first day. A window run and a
full-history run can therefore differ on those cells, as Qlib's own queries over different ranges do.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

_DTYPES = {"f32": pl.Float32, "f64": pl.Float64}


def log(e: pl.Expr, dtype: str) -> pl.Expr:
    """``np.log`` of a float32/float64 column (NaN, never null), keeping its dtype."""

    def run(s: pl.Series) -> pl.Series:
        with np.errstate(divide="ignore", invalid="ignore"):
            return pl.Series(s.name, np.log(s.to_numpy()))

    return e.map_batches(run, return_dtype=_DTYPES[dtype], is_elementwise=True)


def power(base: pl.Expr | float, exponent: pl.Expr | float, dtype: str) -> pl.Expr:
    """``np.power`` with numpy's promotion (a Python number adapts to the series' dtype)."""

    def run(s: pl.Series) -> pl.Series:
        if isinstance(base, pl.Expr) and isinstance(exponent, pl.Expr):
            a, b = s.struct.field("a").to_numpy(), s.struct.field("b").to_numpy()
        elif isinstance(base, pl.Expr):
            a, b = s.to_numpy(), exponent
        else:
            a, b = base, s.to_numpy()
        with np.errstate(all="ignore"):
            return pl.Series(s.name, np.power(a, b))

    if isinstance(base, pl.Expr) and isinstance(exponent, pl.Expr):
        e = pl.struct(base.alias("a"), exponent.alias("b"))
    else:
        e = base if isinstance(base, pl.Expr) else exponent
    return e.map_batches(run, return_dtype=_DTYPES[dtype], is_elementwise=True)


def expanding_mad(x: pl.Expr) -> pl.Expr:
    """Qlib's ``Mad(x, 0)`` of a Float64 expression with nulls for missing values, per batch (one instrument);
    Float64 with null where Qlib gives NaN."""
    return _per_instrument(x, _expanding_mad)


def expanding_ema(x: pl.Expr) -> pl.Expr:
    """Qlib's ``EMA(x, 0)``, as ``expanding_mad``."""
    return _per_instrument(x, _expanding_ema)


def _per_instrument(x: pl.Expr, fn: Callable[[np.ndarray], np.ndarray]) -> pl.Expr:
    def run(s: pl.Series) -> pl.Series:
        values = s.cast(pl.Float64).fill_null(np.nan).to_numpy()
        return pl.Series(s.name, fn(values), dtype=pl.Float64, nan_to_null=True)

    return x.map_batches(run, return_dtype=pl.Float64)


def _expanding_ema(values: np.ndarray) -> np.ndarray:
    """Qlib's EMA(x, 0): on day t the weights a**(t-i), a = 1 - 2 / (t + 2), over days i = 0..t, normalised
    over all of them, applied to the non-NaN ones (np.nansum); NaN before the first value. Horner's scheme per
    day t, run for all days at once: after folding day i, num[t] = sum_{j<=i} x_j a_t**(i-j)."""
    ok = ~np.isnan(values)
    decay = 1.0 - 2.0 / (np.arange(values.size) + 2.0)
    num = np.zeros(values.size)
    den = np.zeros(values.size)
    for i in range(values.size):
        tail_decay = decay[i:]
        num[i:] *= tail_decay
        den[i:] *= tail_decay
        den[i:] += 1.0
        if ok[i]:
            num[i:] += values[i]
    out = num / den
    out[np.cumsum(ok) == 0] = np.nan
    return out


def _expanding_mad(values: np.ndarray) -> np.ndarray:
    """Qlib's Mad(x, 0): mean |v - mean v| over the non-NaN values so far; each value is added to the
    absolute deviations of all the later days from their own means."""
    ok = ~np.isnan(values)
    count = np.cumsum(ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.cumsum(np.where(ok, values, 0.0)) / count
    total = np.zeros(values.size)
    for i in np.flatnonzero(ok):
        total[i:] += np.abs(values[i] - mean[i:])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def rolling_var(x: pl.Expr, n: int, *, std: bool, first_t: int | None = None) -> pl.Expr:
    """Qlib's ``Var(x, n)`` (``Std`` with ``std``), ddof 1, over the flat chunk layout: ``x`` Float64 with null
    for what pandas skips, ``_seg`` the instrument of each row (padding rows between instruments are null in
    ``x``); n == 0 is expanding. Float64, null where pandas gives NaN.

    Each instrument's series starts at its first row, or with ``first_t`` at the row of calendar day ``first_t``
    (``_t``) when that is later: the first day Qlib loads for a query (its start minus the column's reach)."""

    def run(s: pl.Series) -> pl.Series:
        values = s.struct.field("x").fill_null(np.nan).to_numpy()
        seg = s.struct.field("_seg").to_numpy()
        rows = np.arange(values.size, dtype=np.int64)
        new = np.ones(values.size, dtype=bool)
        new[1:] = seg[1:] != seg[:-1]
        first = np.maximum.accumulate(np.where(new, rows, 0))  # first row of each row's instrument
        if first_t is not None:
            # an instrument has a row on every calendar day of its span, so day first_t is that many rows on
            t = s.struct.field("_t").to_numpy().astype(np.int64)
            first = first + np.maximum(first_t - t[first], 0)
        start = np.minimum(first if n == 0 else np.maximum(rows - (n - 1), first), rows + 1)
        out = _pandas_var(values, start, rows + 1)
        if std:
            with np.errstate(invalid="ignore"):
                out = np.where(out < 0, 0.0, np.sqrt(out))  # pandas' zsqrt
        return pl.Series(s.name, out, dtype=pl.Float64, nan_to_null=True)

    parts = [x.alias("x"), pl.col("_seg")] + ([pl.col("_t")] if first_t is not None else [])
    return pl.struct(parts).map_batches(run, return_dtype=pl.Float64)


def _pandas_var(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """pandas' rolling var (min_periods 1, ddof 1) of ``values`` over the windows [start, end). pandas is
    imported here, on first use: the command line's start-up does not pay for it."""
    try:  # pandas' own kernel, called directly
        from pandas._libs.window.aggregations import roll_var

        return np.asarray(roll_var(values, start, end, 1, 1), dtype=np.float64)
    except (ImportError, TypeError):  # pragma: no cover - another pandas: its public API
        return public_pandas_var(values, start, end)


def public_pandas_var(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``_pandas_var`` through pandas' public API (a custom window indexer): the same kernel, three times slower."""
    import pandas as pd
    from pandas.api.indexers import BaseIndexer

    class Bounds(BaseIndexer):
        def get_window_bounds(self, num_values=0, min_periods=None, center=None, closed=None, step=None):
            return start, end

    return pd.Series(values).rolling(Bounds(), min_periods=1).var(ddof=1).to_numpy(dtype=np.float64)
