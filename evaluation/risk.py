"""Risk figures of a daily return series, defined as Qlib's ``risk_analysis`` defines them.

Qlib annualises with 238 periods per year for daily data (not 252) and, in its default "sum" mode, accumulates
returns by addition, so the annualised return is simply ``mean * N`` and the drawdown is measured on the summed
curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl

#: periods per year for each analysis frequency (Qlib's scalers: 238 trading days, 50 weeks, 12 months)
PERIODS_PER_YEAR = {"day": 238, "week": 50, "month": 12, "minute": 240 * 238}

RiskMode = Literal["sum", "product"]


def annualisation_periods(freq: str) -> int:
    if freq not in PERIODS_PER_YEAR:
        raise ValueError(f"unknown freq {freq!r}; valid values: {', '.join(PERIODS_PER_YEAR)}")
    return PERIODS_PER_YEAR[freq]


def _as_array(returns: pl.Series | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(returns, pl.Series):
        arr = returns.cast(pl.Float64).fill_null(np.nan).to_numpy()
    else:
        arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("returns is empty: risk analysis needs at least one period")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        first = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"returns contain {bad} missing or infinite values (first at position {first})")
    return arr


def _sample_std(values: np.ndarray) -> float:
    # ddof=1 like pandas; a single observation has no spread estimate
    return float(np.std(values, ddof=1)) if values.size > 1 else math.nan


def risk_analysis(
    returns: pl.Series | np.ndarray | Sequence[float], freq: str = "day", mode: RiskMode = "sum"
) -> dict[str, float]:
    """mean, std, annualized_return, information_ratio and max_drawdown of per-period returns.

    * ``mode="sum"``: arithmetic mean and ddof=1 std of the returns; annualized return ``mean * N``; drawdown
      ``min(cumsum - running max of cumsum)``.
    * ``mode="product"``: geometric mean ``prod(1 + r) ** (1 / n) - 1``; std of ``log(1 + r)``; annualized
      return ``prod(1 + r) ** (N / n) - 1``; drawdown ``min(curve / running max - 1)`` on the compounded curve.

    The information ratio is ``mean / std * sqrt(N)`` in both modes (N = 238 for "day").
    """
    r = _as_array(returns)
    n_year = annualisation_periods(freq)
    if mode == "sum":
        mean = float(np.mean(r))
        std = _sample_std(r)
        annualized = mean * n_year
        curve = np.cumsum(r)
        max_drawdown = float(np.min(curve - np.maximum.accumulate(curve)))
    elif mode == "product":
        curve = np.cumprod(1.0 + r)
        mean = float(curve[-1] ** (1.0 / r.size) - 1.0)
        std = _sample_std(np.log(1.0 + r))
        annualized = float(curve[-1] ** (n_year / r.size) - 1.0)
        max_drawdown = float(np.min(curve / np.maximum.accumulate(curve) - 1.0))
    else:
        raise ValueError(f"unknown mode {mode!r}; valid values: 'sum', 'product'")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.float64(mean) / np.float64(std) * np.sqrt(n_year))
    return {
        "mean": mean,
        "std": std,
        "annualized_return": annualized,
        "information_ratio": ratio,
        "max_drawdown": max_drawdown,
    }
