"""Rolling kernels against pandas' rolling functions (the implementation Qlib relies on) on ragged, gappy data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from features import ops
from features.calendar_grid import Grid, build_layout

WINDOWS = (1, 3, 5, 10, 20)


def _series(rng: np.random.Generator) -> list[np.ndarray]:
    """Per-instrument float32 series with NaN runs, ties (tick grid), constant stretches, zeros and an inf."""
    out = []
    for n in (1, 2, 7, 40, 90):
        x = np.round(rng.normal(10, 0.05, n), 2)
        if n > 20:
            x[5:9] = np.nan
            x[12:20] = x[11]  # constant run
            x[25] = np.nan
        if n > 60:
            x[60:70] = 0.0
            x[80] = np.inf
        out.append(x.astype(np.float32))
    return out


def _layout(series: list[np.ndarray]) -> tuple[Grid, list[np.ndarray]]:
    n_days = max(len(s) for s in series) + 5
    cal = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n_days)]
    rows = []
    for i, s in enumerate(series):
        offset = i % 3  # instruments start on different days
        rows += [(f"I{i}", cal[offset + k], float(v)) for k, v in enumerate(s)]
    bars = pl.DataFrame(rows, schema={"instrument": pl.Utf8, "date": pl.Date, "close": pl.Float64}, orient="row")
    layout = build_layout(bars, cal, ("close",), ("close",))
    grids = list(layout.grids)
    assert len(grids) == 1
    return grids[0], series


@pytest.fixture(scope="module")
def data():
    return _layout(_series(np.random.default_rng(7)))


def _per_instrument(grid: Grid, values: np.ndarray, series: list[np.ndarray]) -> list[np.ndarray]:
    out, start = [], 0
    at = values[grid.out_pos]
    for s in series:
        out.append(at[start : start + len(s)])
        start += len(s)
    return out


def _check(got: list[np.ndarray], want: list[np.ndarray], rtol: float = 1e-9, atol: float = 1e-12) -> None:
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("how", ["mean", "std", "sum", "max", "min"])
def test_moments_and_extremes_match_pandas(data, how):
    grid, series = data
    x = grid.field("close")
    if how in ("mean", "std"):
        res = {w: m if how == "mean" else s for w, (m, s) in ops.rolling_moments(x, grid, WINDOWS).items()}
    else:
        res = {"sum": ops.rolling_sum, "max": ops.rolling_max, "min": ops.rolling_min}[how](x, WINDOWS)
    for w in WINDOWS:
        want = [getattr(pd.Series(s, dtype="float64").rolling(w, min_periods=1), how)().to_numpy() for s in series]
        _check(_per_instrument(grid, res[w], series), want, rtol=1e-7 if how == "std" else 1e-9)


def test_quantile_and_rank_match_pandas(data):
    grid, series = data
    x = grid.field("close")
    quant = ops.rolling_quantiles(x, grid.out_pos, (0.8, 0.2), WINDOWS)
    ranks = ops.rolling_rank(x, WINDOWS)
    for w in WINDOWS:
        for k, q in enumerate((0.8, 0.2)):
            want = [pd.Series(s, dtype="float64").rolling(w, min_periods=1).quantile(q).to_numpy() for s in series]
            got, start = [], 0
            for s in series:
                got.append(quant[w][k][start : start + len(s)])
                start += len(s)
            _check(got, want)
        want = [pd.Series(s, dtype="float64").rolling(w, min_periods=1).rank(pct=True).to_numpy() for s in series]
        _check(_per_instrument(grid, ranks[w], series), want)


@pytest.mark.parametrize("which", ["max", "min"])
def test_idxmax_idxmin_match_rolling_apply_argmax(data, which):
    """Including Qlib's quirk: np.argmax on a window with a NaN returns the first NaN's position."""
    grid, series = data
    x = grid.field("close")
    res = (ops.rolling_idxmax if which == "max" else ops.rolling_idxmin)(x, grid, WINDOWS)
    fn = (lambda v: v.argmax() + 1) if which == "max" else (lambda v: v.argmin() + 1)
    for w in WINDOWS:
        want = [pd.Series(s, dtype="float64").rolling(w, min_periods=1).apply(fn, raw=True).to_numpy() for s in series]
        _check(_per_instrument(grid, res[w], series), want)


def test_corr_matches_pandas_pairwise(data):
    grid, series = data
    x = grid.field("close")
    y = np.log(np.abs(x - np.float32(9.9)) + np.float32(1))  # NaN where x is, plus its own pattern
    y[::11] = np.nan
    corr, _, _ = ops.rolling_corr(x, y, grid, WINDOWS)
    ys = _per_instrument(grid, y, series)
    for w in WINDOWS:
        want = [
            pd.Series(s, dtype="float64").rolling(w, min_periods=1).corr(pd.Series(t, dtype="float64")).to_numpy()
            for s, t in zip(series, ys, strict=True)
        ]
        _check(_per_instrument(grid, corr[w], series), want, rtol=1e-7, atol=1e-9)


def test_corr_side_stds_use_each_sides_own_values(data):
    """Qlib masks Corr with each input's own rolling std (its own NaN pattern, not the pairwise one)."""
    grid, series = data
    x = grid.field("close")
    y = x * np.float32(2) + np.float32(1)
    y[::7] = np.nan  # y misses more days than x
    _, std_x, std_y = ops.rolling_corr(x, y, grid, WINDOWS)
    ys = _per_instrument(grid, y, series)
    for w in WINDOWS:
        want_x = [pd.Series(s, dtype="float64").rolling(w, min_periods=1).std().to_numpy() for s in series]
        want_y = [pd.Series(t, dtype="float64").rolling(w, min_periods=1).std().to_numpy() for t in ys]
        _check(_per_instrument(grid, std_x[w], series), want_x, rtol=1e-7)
        _check(_per_instrument(grid, std_y[w], series), want_y, rtol=1e-7)
    _, none_x, _ = ops.rolling_corr(x, y, grid, WINDOWS, side_std=(False, True))
    assert none_x is None


def _lstsq(win: np.ndarray) -> tuple[float, float, float]:
    """Slope, r^2 and today's residual of y on positions 1..W over the window's non-NaN values."""
    pos = np.arange(1, win.size + 1, dtype=np.float64)
    ok = np.isfinite(win)
    if ok.sum() < 2:
        return np.nan, np.nan, np.nan
    slope, icpt = np.polyfit(pos[ok], win[ok], 1)
    yy = win[ok]
    ss_tot = ((yy - yy.mean()) ** 2).sum()
    fit = slope * pos[ok] + icpt
    r2 = 1 - ((yy - fit) ** 2).sum() / ss_tot if ss_tot > 0 else np.nan
    resi = win[-1] - (slope * win.size + icpt) if ok[-1] else np.nan
    return slope, r2, resi


def test_regression_matches_least_squares(data):
    grid, series = data
    x = grid.field("close")
    res = ops.rolling_regression(x, grid, WINDOWS)
    for w in WINDOWS:
        slope, rsq, resi = (_per_instrument(grid, a, series) for a in res[w][:3])
        for k, s in enumerate(series):
            s64 = s.astype(np.float64)
            s64[np.isinf(s64)] = np.nan
            for t in range(len(s)):
                win = np.concatenate([np.full(max(0, w - 1 - t), np.nan), s64[max(0, t - w + 1) : t + 1]])
                b, r2, e = _lstsq(win)
                np.testing.assert_allclose(slope[k][t], b, rtol=1e-6, atol=1e-9)
                np.testing.assert_allclose(resi[k][t], e, rtol=1e-6, atol=1e-9)
                if np.isfinite(r2):  # constant windows give 0/0 (NaN) in Qlib before its std mask
                    np.testing.assert_allclose(rsq[k][t], r2, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n", range(1, 21))
def test_sorting_network_sorts_every_zero_one_input(n):
    """0-1 principle: a comparator network that sorts all 2^n binary inputs sorts everything."""
    pairs = ops.sorting_network(n)
    codes = np.arange(2**n, dtype=np.int64)
    bits = [((codes >> k) & 1).astype(np.int8) for k in range(n)]
    for i, j in pairs:
        bits[i], bits[j] = np.minimum(bits[i], bits[j]), np.maximum(bits[i], bits[j])
    stacked = np.stack(bits)
    assert (np.diff(stacked, axis=0) >= 0).all()


def test_std_is_zero_is_qlib_isclose():
    std = np.array([0.0, 1e-5, 2e-5, 2.1e-5, np.nan, 1.0])
    np.testing.assert_array_equal(ops.std_is_zero(std), np.isclose(std, 0, atol=2e-5))


def test_window_plan_rejects_bad_windows():
    with pytest.raises(ValueError, match="rolling window"):
        ops.window_sums(np.zeros((1, 10)), (0,))
