"""Precision of the Polars rolling kernels where running sums fail: large levels (volumes of 1e8..1e9, prices
with 1e-4 moves), constant runs right after large values, level jumps, long series. References: the exact
two-pass numpy per window (exact least squares, correlation and the std of Qlib's flat-window mask), within the
parity tolerance (1e-4 relative / 1e-6 absolute) and with the same null pattern."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from features.expressions import rolling as R
from tests.features.expressions.test_rolling import _exact_regression

WINDOWS = (5, 20, 60)


def _stress(rng: np.random.Generator, level: float, noise: float, length: int = 2000) -> np.ndarray:
    x = level * (1 + 0.1 * np.sin(np.arange(length) / 200)) + rng.normal(size=length) * noise
    x[500:520] = x[499]  # a constant run after large values
    x[800:900] *= 3  # a level jump
    x[1200:1260] = np.round(x[1200])  # a long constant run
    x[1500:1530] = np.nan
    x[rng.random(length) < 0.03] = np.nan
    return x


@pytest.fixture(scope="module")
def data():
    return make_data()


def make_data():
    rng = np.random.default_rng(5)
    xs = [_stress(rng, 1e9, 1.0), _stress(rng, 1e8, 1e4), _stress(rng, 10.0, 1e-4), _stress(rng, 1e4, 1e-2)]
    ys = [x * 0.5 + rng.normal(size=x.size) * np.nanstd(x) * 0.1 for x in xs]
    frame = pl.DataFrame(
        {
            "instrument": np.repeat(np.arange(len(xs)), [x.size for x in xs]),
            "x": np.concatenate(xs),
            "y": np.concatenate(ys),
        }  # fmt: skip
    ).with_columns(pl.col("x", "y").fill_nan(None))
    return xs, ys, frame


def _run(frame: pl.DataFrame, expr: pl.Expr) -> np.ndarray:
    return frame.select(expr.over("instrument").alias("r"))["r"].fill_null(np.nan).to_numpy()


def _assert_parity(got: np.ndarray, want: np.ndarray) -> None:
    miss = np.flatnonzero(np.isnan(got) != np.isnan(want))
    assert miss.size == 0, f"null pattern differs at {miss[:10]}"
    ok = ~np.isnan(want)
    bad = np.flatnonzero(np.abs(got[ok] - want[ok]) > 1e-6 + 1e-4 * np.abs(want[ok]))
    assert bad.size == 0, f"{bad.size} cells differ: {got[ok][bad[:5]]} vs {want[ok][bad[:5]]}"


def _per_window(xs: list[np.ndarray], w: int, fn) -> np.ndarray:
    return np.concatenate([pd.Series(x).rolling(w, min_periods=1).apply(fn, raw=True).to_numpy() for x in xs])


def _two_pass_std(a: np.ndarray) -> float:
    v = a[~np.isnan(a)]
    return v.std(ddof=1) if v.size >= 2 else np.nan


def _two_pass_corr(a: np.ndarray, b: np.ndarray) -> float:
    both = ~np.isnan(a) & ~np.isnan(b)
    if both.sum() < 2:
        return np.nan
    da, db = a[both] - a[both].mean(), b[both] - b[both].mean()
    sxx, syy = (da * da).sum(), (db * db).sum()
    return (da * db).sum() / np.sqrt(sxx * syy) if sxx > 0 and syy > 0 else np.nan


def _flat(xs: list[np.ndarray], w: int) -> np.ndarray:
    """Qlib's mask for Rsquare / Corr: np.isclose(rolling std, 0, atol=2e-5), the std taken exactly."""
    return np.isclose(_per_window(xs, w, _two_pass_std), 0, atol=2e-05)


@pytest.mark.parametrize("w", WINDOWS)
def test_regression_and_corr_match_two_pass(data, w: int) -> None:
    xs, ys, frame = data
    x, y = pl.col("x"), pl.col("y")
    for what, kernel in (("slope", R.rolling_slope), ("rsquare", R.rolling_rsquare), ("resi", R.rolling_resi)):
        want = _per_window(xs, w, lambda a, what=what: _exact_regression(a, what))
        if what == "rsquare":
            want[_flat(xs, w)] = np.nan
        _assert_parity(_run(frame, kernel(x, w)), want)
    corr = []
    for a, b in zip(xs, ys, strict=True):
        corr.append(np.array([_two_pass_corr(a[max(0, t - w + 1) : t + 1], b[max(0, t - w + 1) : t + 1])
                              for t in range(a.size)]))  # fmt: skip
    want = np.concatenate(corr)
    want[_flat(xs, w) | _flat(ys, w)] = np.nan
    _assert_parity(_run(frame, R.rolling_corr(x, y, w)), want)


def _mad(a: np.ndarray) -> float:
    v = a[~np.isnan(a)]
    return np.mean(np.abs(v - v.mean()))


def _wma(a: np.ndarray) -> float:
    w = np.arange(len(a)) + 1
    return np.nanmean(w / w.sum() * a)


@pytest.mark.parametrize("w", WINDOWS)
def test_mad_wma_cov_match_two_pass(data, w: int) -> None:
    xs, ys, frame = data
    x, y = pl.col("x"), pl.col("y")
    _assert_parity(_run(frame, R.rolling_mad(x, w)), _per_window(xs, w, _mad))
    _assert_parity(_run(frame, R.rolling_wma(x, w)), _per_window(xs, w, _wma))
    cov = []
    for a, b in zip(xs, ys, strict=True):
        out = np.full(a.size, np.nan)
        for t in range(a.size):
            wa, wb = a[max(0, t - w + 1) : t + 1], b[max(0, t - w + 1) : t + 1]
            m = ~np.isnan(wa) & ~np.isnan(wb)
            if m.sum() >= 2:
                out[t] = ((wa[m] - wa[m].mean()) * (wb[m] - wb[m].mean())).sum() / (m.sum() - 1)
        cov.append(out)
    _assert_parity(_run(frame, R.rolling_cov(x, y, w)), np.concatenate(cov))


@pytest.mark.parametrize("w", WINDOWS)
def test_skew_kurt_ema_match_pandas_on_large_values(data, w: int) -> None:
    xs, _, frame = data
    x = pl.col("x")
    for kernel, ref in (
        (R.rolling_skew, lambda s: s.rolling(w, min_periods=1).skew()),
        (R.rolling_kurt, lambda s: s.rolling(w, min_periods=1).kurt()),
        (R.rolling_ema, lambda s: s.ewm(span=w, min_periods=1).mean()),
    ):
        want = np.concatenate([ref(pd.Series(a)).to_numpy() for a in xs])
        _assert_parity(_run(frame, kernel(x, w)), want)


def _ema_expanding(a: np.ndarray) -> float:
    decay = 1 - 2 / (1 + len(a))
    w = decay ** np.arange(len(a))[::-1]
    w /= w.sum()
    return np.nansum(w * a)


def test_expanding_mad_and_ema_on_long_series(data) -> None:
    """The numpy fallback of the expanding Mad and EMA (Horner-like folds over 2000 days) against Qlib's
    expanding apply."""
    xs, _, frame = data
    x = pl.col("x")
    for kernel, fn in ((R.rolling_mad, _mad), (R.rolling_ema, _ema_expanding)):
        want = np.concatenate([pd.Series(a).expanding(min_periods=1).apply(fn, raw=True).to_numpy() for a in xs])
        _assert_parity(_run(frame, kernel(x, 0)), want)
