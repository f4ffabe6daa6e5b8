"""Qlib's rolling operators as vectorised kernels over the flat padded layout of ``features.calendar_grid``.

Every kernel takes whole flat arrays (all instruments of a chunk at once, separated by NaN padding) and returns,
for each requested window ``W``, an array aligned with the input. The semantics are those of Qlib 0.9.x, i.e.
pandas ``rolling(W, min_periods=1)`` over each instrument's calendar series:

- windows start at the instrument's first day, NaN elements are skipped, an all-NaN window gives NaN, and
  +-inf counts as NaN (pandas cleans it before every rolling aggregation);
- ``Std`` uses ddof=1; ``Quantile`` interpolates linearly; ``Rank`` is the average-method percentile of the
  last value; ``IdxMax``/``IdxMin`` are 1-based from the oldest element of the (possibly shorter) window and
  return the first NaN's position when the window holds one (``np.argmax`` on raw windows);
- ``Slope``/``Rsquare``/``Resi`` follow Qlib's Cython kernels: least squares on positions 1..W, NaN elements
  left out but the others keeping their positions.

Sums over a window are built by a doubling tree (window 10 = window 5 now + window 5 five days earlier, ...), so
every window costs a few whole-array additions whatever its length and each sum is computed afresh (no running
sum drifting over the years). Where a variance is small next to the raw second moment the sums are not
precise enough, and those (rare) rows are recomputed exactly from their gathered windows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from features.calendar_grid import PAD, Grid

WINDOWS: tuple[int, ...] = (5, 10, 20, 30, 60)
# A variance below this fraction of the raw second moment has lost too many digits to cancellation.
_CANCEL = 1e-8
# Qlib masks Rsquare and Corr where np.isclose(rolling std, 0, atol=2e-5).
STD_ATOL = 2e-5

Arrays = tuple[np.ndarray, ...]


# ---------------------------------------------------------------- element-wise helpers


def shift(x: np.ndarray, k: int, fill: float = np.nan) -> np.ndarray:
    """``Ref(x, k)`` on the flat layout (last axis): value k cells earlier (k < 0: later)."""
    out = np.empty_like(x)
    if k > 0:
        out[..., :k] = fill
        out[..., k:] = x[..., :-k]
    elif k < 0:
        out[..., k:] = fill
        out[..., :k] = x[..., -k:]
    else:
        out[...] = x
    return out


def as_rolling_input(x: np.ndarray) -> np.ndarray:
    """float64 copy with +-inf turned into NaN, as pandas does before a rolling aggregation."""
    out = x.astype(np.float64)
    out[np.isinf(out)] = np.nan
    return out


def segment_center(x: np.ndarray, grid: Grid) -> np.ndarray:
    """Per-cell constant (the mean of the cell's instrument segment) used to centre values before summing."""
    ok = ~np.isnan(x) & (grid.seg >= 0)
    idx = np.where(ok, grid.seg, grid.n_seg)
    total = np.bincount(idx, weights=np.where(ok, x, 0.0), minlength=grid.n_seg + 1)
    count = np.bincount(idx, minlength=grid.n_seg + 1)
    means = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    means[grid.n_seg] = 0.0
    return means[np.where(grid.seg >= 0, grid.seg, grid.n_seg)]


# ---------------------------------------------------------------- window trees


def _plan(windows: Sequence[int]) -> list[tuple[int, int, int]]:
    """Steps (W, a, b): window W = the newest a cells + the window of b cells that ends a cells earlier."""
    have = {1}
    steps: list[tuple[int, int, int]] = []

    def need(w: int) -> None:
        if w in have:
            return
        a = max(k for k in have if k < w)
        need(w - a)
        steps.append((w, a, w - a))
        have.add(w)

    for w in sorted(set(windows)):
        if not 1 <= w <= PAD:
            raise ValueError(f"rolling window must be between 1 and {PAD}, got {w}")
        need(w)
    return steps


# combine(out, new, old, a, b) writes the merged part into ``out``; all three are aligned views that skip the
# first ``a`` cells (the flat layout starts with PAD > a padding cells, so those cells never matter).
Combine = Callable[[Arrays, Arrays, Arrays, int, int], None]


def _tree(base: Arrays, windows: Sequence[int], combine: Combine) -> dict[int, Arrays]:
    steps = _plan(windows)
    uses: Counter[int] = Counter(windows)
    for _, a, b in steps:
        uses[a] += 1
        uses[b] += 1
    memo: dict[int, Arrays] = {1: base}
    for w, a, b in steps:
        new, old = memo[a], memo[b]
        out = tuple(np.empty_like(arr) for arr in new)
        for o, n in zip(out, new, strict=True):
            o[..., :a] = n[..., :a]
        combine(tuple(o[..., a:] for o in out), tuple(n[..., a:] for n in new), tuple(d[..., :-a] for d in old), a, b)
        memo[w] = out
        for k in (a, b):
            uses[k] -= 1
            if uses[k] == 0:
                memo.pop(k, None)
    return {w: memo[w] for w in windows}


def _combine_sum(out: Arrays, new: Arrays, old: Arrays, a: int, b: int) -> None:
    np.add(new[0], old[0], out=out[0])


def window_sums(stack: np.ndarray, windows: Sequence[int]) -> dict[int, np.ndarray]:
    """Sums over each window of every row of ``stack`` ([k, cells], no NaN: zero out missing values)."""
    return {w: p[0] for w, p in _tree((stack,), windows, _combine_sum).items()}


def _gather_windows(x: np.ndarray, cells: np.ndarray, w: int) -> np.ndarray:
    """[len(cells), w] windows ending at ``cells``, oldest first (cells >= w - 1, true past the first PAD)."""
    return sliding_window_view(x, w)[cells - (w - 1)]


def _real(cells: np.ndarray, grid: Grid) -> np.ndarray:
    """Only the cells that belong to an instrument (refining padding cells would be wasted work)."""
    return cells[grid.age[cells] >= 0]


# ---------------------------------------------------------------- moments: Sum, Mean, Std


def rolling_sum(x: np.ndarray, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    """``Sum(x, W)``: NaN-skipping sum, NaN when the window has no value."""
    x = as_rolling_input(x)
    ok = ~np.isnan(x)
    sums = window_sums(np.stack([ok.astype(np.float64), np.where(ok, x, 0.0)]), windows)
    return {w: np.where(s[0] > 0, s[1], np.nan) for w, s in sums.items()}


def rolling_sums(xs: Sequence[np.ndarray], windows: Sequence[int] = WINDOWS) -> dict[int, list[np.ndarray]]:
    """``Sum`` of several series that share one NaN pattern (e.g. Greater(d,0), Abs(d) of the same d)."""
    xs = [as_rolling_input(x) for x in xs]
    ok = ~np.isnan(xs[0])
    sums = window_sums(np.stack([ok.astype(np.float64), *[np.where(ok, x, 0.0) for x in xs]]), windows)
    return {w: [np.where(s[0] > 0, v, np.nan) for v in s[1:]] for w, s in sums.items()}


def rolling_moments(
    x: np.ndarray, grid: Grid, windows: Sequence[int] = WINDOWS
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(``Mean(x, W)``, ``Std(x, W)``) with pandas' rules: NaN skipped, ddof=1, a constant window has std 0."""
    x = as_rolling_input(x)
    ok = ~np.isnan(x)
    raw = np.where(ok, x, 0.0)
    # centred on one constant per instrument so the sum of squares keeps its digits; the mean uses raw sums so
    # that an all-zero window has a mean of exactly 0 (features divide it by volume + 1e-12)
    z = np.where(ok, x - segment_center(x, grid), 0.0)
    sums = window_sums(np.stack([ok.astype(np.float64), raw, z, z * z]), windows)
    out = {}
    for w, (n, total, s1, s2) in sums.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total / n
            ss = s2 - s1 * (s1 / n)
        bad = _real(np.flatnonzero((n >= 2) & (ss <= _CANCEL * s2)), grid)
        if bad.size:
            ss[bad] = _exact_ss(x, bad, w)
        with np.errstate(invalid="ignore"):
            std = np.where(n >= 2, np.sqrt(np.maximum(ss, 0.0) / np.maximum(n - 1, 1)), np.nan)
        out[w] = (np.where(n > 0, mean, np.nan), std)
    return out


def rolling_std(x: np.ndarray, grid: Grid, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    return {w: s for w, (_, s) in rolling_moments(x, grid, windows).items()}


def _exact_ss(x: np.ndarray, cells: np.ndarray, w: int) -> np.ndarray:
    """Two-pass sum of squared deviations of the windows ending at ``cells``; exactly 0 for a constant window."""
    win = _gather_windows(x, cells, w)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(win, axis=1, keepdims=True)
        ss = np.nansum((win - mean) ** 2, axis=1)
        flat = np.nanmax(win, axis=1) == np.nanmin(win, axis=1)
    ss[flat] = 0.0
    return ss


def std_is_zero(std: np.ndarray) -> np.ndarray:
    """Qlib's ``np.isclose(std, 0, atol=2e-5)``: True where std <= 2e-5 (never where std is NaN)."""
    with np.errstate(invalid="ignore"):
        return np.abs(std) <= STD_ATOL


# ---------------------------------------------------------------- Max, Min, IdxMax, IdxMin


def _combine_max(out: Arrays, new: Arrays, old: Arrays, a: int, b: int) -> None:
    np.maximum(new[0], old[0], out=out[0])


def rolling_max(x: np.ndarray, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    """``Max(x, W)``: NaN-skipping maximum."""
    x = as_rolling_input(x)
    base = (np.where(np.isnan(x), -np.inf, x),)
    parts = _tree(base, windows, _combine_max)
    return {w: np.where(p[0] == -np.inf, np.nan, p[0]) for w, p in parts.items()}


def rolling_min(x: np.ndarray, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    """``Min(x, W)``: NaN-skipping minimum."""
    return {w: -m for w, m in rolling_max(-as_rolling_input(x), windows).items()}


def _combine_argmax(out: Arrays, new: Arrays, old: Arrays, a: int, b: int) -> None:
    # old covers positions 1..b of the merged window, new covers b+1..b+a; ties keep the older element.
    take_new = new[0] > old[0]
    np.copyto(out[0], old[0])
    np.copyto(out[0], new[0], where=take_new)
    np.copyto(out[1], old[1])
    np.add(new[1], b, out=out[1], where=take_new)
    np.copyto(out[2], old[2])
    np.add(new[2], b, out=out[2], where=(old[2] == 0) & (new[2] > 0))


def rolling_idxmax(x: np.ndarray, grid: Grid, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    """``IdxMax(x, W)``: 1-based position of the (first) maximum counted from the oldest element of the window,
    which is shorter during an instrument's first W-1 days; if the window holds a NaN, the first NaN's position
    (``np.argmax`` semantics on a raw window); NaN for an all-NaN window."""
    x = as_rolling_input(x)
    real = grid.age >= 0
    isnan = np.isnan(x)
    base = (
        np.where(isnan, -np.inf, x),
        np.ones(x.size, dtype=np.int32),
        (real & isnan).astype(np.int32),
    )
    parts = _tree(base, windows, _combine_argmax)
    out = {}
    for w, (val, pos, first_nan) in parts.items():
        n_pad = np.maximum(w - 1 - grid.age, 0)  # window cells before the instrument's first day
        res = np.where(first_nan > 0, first_nan, pos) - n_pad
        out[w] = np.where(val == -np.inf, np.nan, res.astype(np.float64))
    return out


def rolling_idxmin(x: np.ndarray, grid: Grid, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    """``IdxMin(x, W)``: as ``rolling_idxmax`` for the minimum."""
    return rolling_idxmax(-as_rolling_input(x), grid, windows)


# ---------------------------------------------------------------- Rank, Quantile


def rolling_rank(x: np.ndarray, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    """``Rank(x, W)``: pandas ``rolling.rank(pct=True)``, average method over the window's non-NaN values;
    NaN when the last value is NaN."""
    x = x.astype(np.float32)  # the same values; float32 comparisons are faster
    x[np.isinf(x)] = np.nan
    size = x.size
    valid = ~np.isnan(x)
    less = np.zeros(size, dtype=np.int32)
    equal = np.zeros(size, dtype=np.int32)
    count = np.zeros(size, dtype=np.int32)
    wanted = set(windows)
    out = {}
    for k in range(max(windows)):
        # compare each value with the one k cells earlier (NaN compares False)
        less[k:] += x[: size - k] < x[k:]
        equal[k:] += x[: size - k] == x[k:]
        count[k:] += valid[: size - k]
        if k + 1 in wanted:
            with np.errstate(divide="ignore", invalid="ignore"):
                rank = (less + (equal + 1) / 2.0) / count
            out[k + 1] = np.where(valid, rank, np.nan)
    return out


def rolling_quantiles(
    x: np.ndarray, cells: np.ndarray, qs: Sequence[float], windows: Sequence[int] = WINDOWS, block: int = 262144
) -> dict[int, list[np.ndarray]]:
    """``Quantile(x, W, q)`` for each q, evaluated only at ``cells``: linear interpolation between the sorted
    non-NaN values at position q*(n-1), like pandas' rolling quantile."""
    # float32 input sorts several times faster (SIMD) and holds the same values; arithmetic is float64
    x32 = x.astype(np.float32)
    x32[np.isinf(x32)] = np.nan
    out: dict[int, list[np.ndarray]] = {}
    for w in windows:
        res = [np.empty(cells.size) for _ in qs]
        for lo in range(0, cells.size, block):
            win = _gather_windows(x32, cells[lo : lo + block], w)
            win.sort(axis=1)  # NaN sorts last
            n = w - np.count_nonzero(np.isnan(win), axis=1)
            partial = np.flatnonzero(n < w)
            for q, dest in zip(qs, res, strict=True):
                part = dest[lo : lo + block]
                # full windows (the bulk) share one interpolation position
                part[:] = _interpolate(win, q * (w - 1))
                if partial.size:
                    sub = win[partial]
                    rows = np.arange(partial.size)
                    idx = q * (n[partial] - 1)
                    below = np.floor(idx).astype(np.int64)
                    v_lo = sub[rows, np.clip(below, 0, w - 1)].astype(np.float64)
                    v_hi = sub[rows, np.clip(below + 1, 0, w - 1)].astype(np.float64)
                    with np.errstate(invalid="ignore"):
                        val = np.where(idx == below, v_lo, v_lo + (v_hi - v_lo) * (idx - below))
                    part[partial] = np.where(n[partial] > 0, val, np.nan)
        out[w] = res
    return out


def _interpolate(sorted_win: np.ndarray, idx: float) -> np.ndarray:
    below = int(np.floor(idx))
    v_lo = sorted_win[:, below].astype(np.float64)
    if idx == below:
        return v_lo
    v_hi = sorted_win[:, below + 1].astype(np.float64)
    return v_lo + (v_hi - v_lo) * (idx - below)


# ---------------------------------------------------------------- Slope, Rsquare, Resi


def _combine_lagged(out: Arrays, new: Arrays, old: Arrays, a: int, b: int) -> None:
    # S: plain sums; L: sums weighted by lag k; Q: weighted by k^2. The old part's lags grow by a.
    (s_out, l_out, q_out), (s_new, l_new, q_new), (s_old, l_old, q_old) = out, new, old
    np.add(s_new, s_old, out=s_out)
    np.multiply(s_old[: l_old.shape[0]], a, out=l_out)
    l_out += l_new
    l_out += l_old
    np.multiply(s_old[: q_old.shape[0]], a * a, out=q_out)
    q_out += 2 * a * l_old[: q_old.shape[0]]
    q_out += q_new
    q_out += q_old


def rolling_regression(
    y: np.ndarray, grid: Grid, windows: Sequence[int] = WINDOWS
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(``Slope``, ``Rsquare``, ``Resi``) of y on positions 1..W (the newest at W), NaN elements left out.

    Rsquare is before Qlib's std mask (see ``std_is_zero``). All three are NaN with fewer than two values in
    the window; Resi is also NaN when today's value is NaN.
    """
    y = as_rolling_input(y)
    ok = ~np.isnan(y)
    z = np.where(ok, y - segment_center(y, grid), 0.0)
    base = (np.stack([ok.astype(np.float64), z, z * z]), np.zeros((2, y.size)), np.zeros((1, y.size)))
    parts = _tree(base, windows, _combine_lagged)
    out = {}
    for w, (s, lag, quad) in parts.items():
        n, sz, szz = s
        ln, lz = lag
        sx = w * n - ln  # positions are x = w - lag
        sxx = w * w * n - 2 * w * ln + quad[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_x = sx / n
            dx = sxx - sx * mean_x
            dz = szz - sz * sz / n
            dxz = (w * sz - lz) - mean_x * sz
            dev = z - sz / n  # today's value minus the window mean
        bad = _real(np.flatnonzero((n >= 2) & (dz <= _CANCEL * szz)), grid)
        if bad.size:
            dx[bad], dz[bad], dxz[bad], mean_x[bad], dev[bad] = _exact_regression(y, bad, w)
        enough = n >= 2
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(enough, dxz / dx, np.nan)
            rsq = np.where(enough, (dxz * dxz) / (dx * dz), np.nan)
            resi = np.where(enough & ok, dev - slope * (w - mean_x), np.nan)
        out[w] = (slope, rsq, resi)
    return out


def _exact_regression(y: np.ndarray, cells: np.ndarray, w: int) -> Arrays:
    """Centred two-pass (dx, dy, dxy, mean x, y_today - mean y) for the windows ending at ``cells``."""
    win = _gather_windows(y, cells, w)
    m = ~np.isnan(win)
    n = m.sum(axis=1)
    pos = np.broadcast_to(np.arange(1, w + 1, dtype=np.float64), win.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = np.where(m, pos, 0.0).sum(axis=1) / n
        mean_y = np.nanmean(win, axis=1)
        flat = np.nanmax(win, axis=1) == np.nanmin(win, axis=1)
        ex = np.where(m, pos - mean_x[:, None], 0.0)
        ey = np.where(m, win - mean_y[:, None], 0.0)
    ey[flat] = 0.0
    dev = np.where(flat, 0.0, win[:, -1] - mean_y)
    return (ex * ex).sum(axis=1), (ey * ey).sum(axis=1), (ex * ey).sum(axis=1), mean_x, dev


# ---------------------------------------------------------------- Corr


def rolling_corr(x: np.ndarray, y: np.ndarray, grid: Grid, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    """Pairwise-complete Pearson correlation (pandas ``rolling.corr``): rows where either side is NaN/inf are
    dropped; NaN with fewer than two pairs or a constant side. Qlib's std mask is applied by the caller."""
    x = as_rolling_input(x)
    y = as_rolling_input(y)
    ok = ~(np.isnan(x) | np.isnan(y))
    x = np.where(ok, x, np.nan)
    y = np.where(ok, y, np.nan)
    zx = np.where(ok, x - segment_center(x, grid), 0.0)
    zy = np.where(ok, y - segment_center(y, grid), 0.0)
    sums = window_sums(np.stack([ok.astype(np.float64), zx, zy, zx * zx, zy * zy, zx * zy]), windows)
    out = {}
    for w, (n, sx, sy, sxx, syy, sxy) in sums.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            dxx = sxx - sx * sx / n
            dyy = syy - sy * sy / n
            dxy = sxy - sx * sy / n
        bad = _real(np.flatnonzero((n >= 2) & ((dxx <= _CANCEL * sxx) | (dyy <= _CANCEL * syy))), grid)
        if bad.size:
            dxx[bad], dyy[bad], dxy[bad] = _exact_cov(x, y, bad, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = dxy / np.sqrt(dxx * dyy)
        out[w] = np.where((n >= 2) & (dxx > 0) & (dyy > 0), r, np.nan)
    return out


def _exact_cov(x: np.ndarray, y: np.ndarray, cells: np.ndarray, w: int) -> Arrays:
    wx = _gather_windows(x, cells, w)
    wy = _gather_windows(y, cells, w)
    with np.errstate(invalid="ignore"):
        ex = wx - np.nanmean(wx, axis=1, keepdims=True)
        ey = wy - np.nanmean(wy, axis=1, keepdims=True)
        ex[np.nanmax(wx, axis=1) == np.nanmin(wx, axis=1)] = 0.0
        ey[np.nanmax(wy, axis=1) == np.nanmin(wy, axis=1)] = 0.0
    return np.nansum(ex * ex, axis=1), np.nansum(ey * ey, axis=1), np.nansum(ex * ey, axis=1)
