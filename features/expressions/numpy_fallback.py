"""The only numpy in the engine, each through ``map_batches``: ``Log`` and ``Power`` over whole columns, and
the expanding (window 0) ``Mad`` and ``EMA`` over one instrument at a time.

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
