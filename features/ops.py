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
  left out but the others keeping their positions (here +-inf is also left out, where Qlib's running sums would
  turn NaN for a window's length; Alpha158 only regresses ``$close``, which is never infinite).

Results are the exact values of these definitions up to float64 rounding. pandas and Qlib keep running sums,
whose residue occasionally shows: a window whose values are all equal can get a tiny non-zero pandas std
(about 1e-4 after large values left it), which Qlib then divides by ``volume + 1e-12``; here it is exactly 0.

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


def segment_center(x: np.ndarray, grid: Grid, step: int = 8) -> np.ndarray:
    """Per-cell constant (about the mean of the cell's instrument) used to centre values before summing.

    Any constant of the right magnitude will do, so it is estimated from every ``step``-th cell.
    """
    seg, xs = grid.seg[::step], x[::step]
    ok = ~np.isnan(xs) & (seg >= 0)
    idx = np.where(ok, seg, grid.n_seg)
    total = np.bincount(idx, weights=np.where(ok, xs, 0.0), minlength=grid.n_seg + 1)
    count = np.bincount(idx, minlength=grid.n_seg + 1)
    means = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    means[grid.n_seg] = 0.0
    return means[np.where(grid.seg >= 0, grid.seg, grid.n_seg)]


def _centred(x: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(not-NaN mask, x minus its instrument's constant with 0 where NaN)."""
    ok = ~np.isnan(x)
    z = x - segment_center(x, grid)
    z[~ok] = 0.0
    return ok, z


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
    ok, z = _centred(x, grid)  # centred so that the sum of squares keeps its digits
    raw = np.where(ok, x, 0.0)  # the mean uses raw sums: an all-zero window has a mean of exactly 0
    sums = window_sums(np.stack([ok.astype(np.float64), raw, z, z * z]), windows)
    out = {}
    for w, (n, total, s1, s2) in sums.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            ss = s2 - s1 * (s1 / n)
            mean = np.where(n > 0, total / n, np.nan)
        bad = _cancelled(n, ss, s2, grid)
        if bad.size:
            ss[bad] = _exact_ss(x, bad, w)
        out[w] = (mean, _std(ss, n))
    return out


def rolling_std(x: np.ndarray, grid: Grid, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    return {w: s for w, (_, s) in rolling_moments(x, grid, windows).items()}


def _cancelled(n: np.ndarray, ss: np.ndarray, s2: np.ndarray, grid: Grid) -> np.ndarray:
    """Real cells whose sum of squared deviations lost too many digits (mostly constant windows)."""
    with np.errstate(invalid="ignore"):
        return _real(np.flatnonzero((n >= 2) & (ss <= _CANCEL * s2) & (s2 > 0)), grid)


def _std(ss: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 2, np.sqrt(np.maximum(ss, 0.0) / (n - 1)), np.nan)


def _constant(win: np.ndarray) -> np.ndarray:
    """Rows whose non-NaN values are all equal (False for all-NaN rows)."""
    return np.fmax.reduce(win, axis=1) == np.fmin.reduce(win, axis=1)


def _exact_ss(x: np.ndarray, cells: np.ndarray, w: int) -> np.ndarray:
    """Two-pass sum of squared deviations of the windows ending at ``cells``; exactly 0 for a constant window."""
    win = _gather_windows(x, cells, w)
    ss = np.zeros(cells.size)
    rest = np.flatnonzero(~_constant(win))
    if rest.size:
        sub = win[rest]
        with np.errstate(invalid="ignore"):
            ss[rest] = np.nansum((sub - np.nanmean(sub, axis=1, keepdims=True)) ** 2, axis=1)
    return ss


def std_is_zero(std: np.ndarray) -> np.ndarray:
    """Qlib's ``np.isclose(std, 0, atol=2e-5)``: True where std <= 2e-5 (never where std is NaN)."""
    with np.errstate(invalid="ignore"):
        return np.abs(std) <= STD_ATOL


# ---------------------------------------------------------------- Max, Min, IdxMax, IdxMin


def _combine_max(out: Arrays, new: Arrays, old: Arrays, a: int, b: int) -> None:
    np.maximum(new[0], old[0], out=out[0])


def _ordering_input(x: np.ndarray, negate: bool = False) -> np.ndarray:
    """Copy for order-only kernels: float32 input stays float32 (comparisons are exact and half the memory
    traffic), +-inf becomes NaN as in pandas, optionally negated (a minimum is a maximum of -x)."""
    out = x.astype(np.float32 if x.dtype == np.float32 else np.float64)
    out[np.isinf(out)] = np.nan
    if negate:
        np.negative(out, out=out)
    return out


def rolling_max(x: np.ndarray, windows: Sequence[int] = WINDOWS, negate: bool = False) -> dict[int, np.ndarray]:
    """``Max(x, W)``: NaN-skipping maximum (float64 result)."""
    x = _ordering_input(x, negate)
    x[np.isnan(x)] = -np.inf
    parts = _tree((x,), windows, _combine_max)
    return {w: np.where(p[0] == -np.inf, np.nan, p[0]).astype(np.float64) for w, p in parts.items()}


def rolling_min(x: np.ndarray, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    """``Min(x, W)``: NaN-skipping minimum."""
    return {w: -m for w, m in rolling_max(x, windows, negate=True).items()}


def _combine_argmax(out: Arrays, new: Arrays, old: Arrays, a: int, b: int) -> None:
    # old covers positions 1..b of the merged window, new covers b+1..b+a; ties keep the older element.
    take_new = new[0] > old[0]
    np.copyto(out[0], old[0])
    np.copyto(out[0], new[0], where=take_new)
    np.copyto(out[1], old[1])
    np.add(new[1], b, out=out[1], where=take_new)
    np.copyto(out[2], old[2])
    np.add(new[2], b, out=out[2], where=(old[2] == 0) & (new[2] > 0))


def rolling_idxmax(
    x: np.ndarray, grid: Grid, windows: Sequence[int] = WINDOWS, negate: bool = False
) -> dict[int, np.ndarray]:
    """``IdxMax(x, W)``: 1-based position of the (first) maximum counted from the oldest element of the window,
    which is shorter during an instrument's first W-1 days; if the window holds a NaN, the first NaN's position
    (``np.argmax`` semantics on a raw window); NaN for an all-NaN window."""
    x = _ordering_input(x, negate)
    isnan = np.isnan(x)
    x[isnan] = -np.inf
    # positions fit in int8 (windows are at most PAD = 64 long)
    base = (x, np.ones(x.size, dtype=np.int8), ((grid.age >= 0) & isnan).astype(np.int8))
    parts = _tree(base, windows, _combine_argmax)
    out = {}
    for w, (val, pos, first_nan) in parts.items():
        n_pad = np.maximum(w - 1 - grid.age, 0)  # window cells before the instrument's first day
        res = np.where(first_nan > 0, first_nan, pos).astype(np.int32) - n_pad
        out[w] = np.where(val == -np.inf, np.nan, res.astype(np.float64))
    return out


def rolling_idxmin(x: np.ndarray, grid: Grid, windows: Sequence[int] = WINDOWS) -> dict[int, np.ndarray]:
    """``IdxMin(x, W)``: as ``rolling_idxmax`` for the minimum."""
    return rolling_idxmax(x, grid, windows, negate=True)


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


# Windows up to this length are sorted with a comparator network over whole columns instead of row by row.
_NETWORK_MAX = 10


def sorting_network(n: int) -> list[tuple[int, int]]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for ``n`` inputs (any n, not only powers of
    two): applying ``min`` to i and ``max`` to j in order sorts the inputs ascending."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k - 1, n - j - k - 1) + 1):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def _sorted_columns(x_inf: np.ndarray, cells: np.ndarray, w: int) -> list[np.ndarray]:
    """The w values of each window ending at ``cells``, sorted ascending, as w column arrays (NaN as +inf)."""
    cols = [np.take(x_inf, cells - (w - 1 - k), mode="clip") for k in range(w)]
    spare = np.empty_like(cols[0])
    for i, j in sorting_network(w):
        np.minimum(cols[i], cols[j], out=spare)
        np.maximum(cols[i], cols[j], out=cols[j])
        cols[i], spare = spare, cols[i]
    return cols


def rolling_quantiles(
    x: np.ndarray, cells: np.ndarray, qs: Sequence[float], windows: Sequence[int] = WINDOWS, block: int = 65536
) -> dict[int, list[np.ndarray]]:
    """``Quantile(x, W, q)`` for each q, evaluated only at ``cells``: linear interpolation between the sorted
    non-NaN values at position q*(n-1), like pandas' rolling quantile."""
    # float32 input sorts faster and holds the same values; arithmetic is float64. NaN (and +-inf, which pandas
    # treats as NaN) become +inf so that they sort last.
    x32 = x.astype(np.float32)
    x32[~np.isfinite(x32)] = np.inf
    out: dict[int, list[np.ndarray]] = {}
    for w in windows:
        res = [np.empty(cells.size) for _ in qs]
        for lo in range(0, cells.size, block):
            part = cells[lo : lo + block]
            if w <= _NETWORK_MAX:
                cols = _sorted_columns(x32, part, w)
                n = w - sum((c == np.inf).view(np.int8) for c in cols).astype(np.int64)
            else:
                win = _gather_windows(x32, part, w)
                win.sort(axis=1)
                cols = None
                n = w - np.count_nonzero(win == np.inf, axis=1)
            partial = np.flatnonzero(n < w)
            for q, dest in zip(qs, res, strict=True):
                target = dest[lo : lo + block]
                # full windows (the bulk) share one interpolation position
                target[:] = _interpolate(cols if cols is not None else win, q * (w - 1), cols is not None)
                if partial.size:
                    sub = np.stack([c[partial] for c in cols], axis=1) if cols is not None else win[partial]
                    rows = np.arange(partial.size)
                    idx = q * (n[partial] - 1)
                    below = np.floor(idx).astype(np.int64)
                    v_lo = sub[rows, np.clip(below, 0, w - 1)].astype(np.float64)
                    v_hi = sub[rows, np.clip(below + 1, 0, w - 1)].astype(np.float64)
                    with np.errstate(invalid="ignore"):
                        val = np.where(idx == below, v_lo, v_lo + (v_hi - v_lo) * (idx - below))
                    target[partial] = np.where(n[partial] > 0, val, np.nan)
        out[w] = res
    return out


def _interpolate(sorted_values: np.ndarray | list[np.ndarray], idx: float, columns: bool) -> np.ndarray:
    """Linear interpolation at position ``idx`` of sorted windows, given as rows or as a list of columns."""
    below = int(np.floor(idx))

    def at(k: int) -> np.ndarray:
        return (sorted_values[k] if columns else sorted_values[:, k]).astype(np.float64)

    v_lo = at(below)
    if idx == below:
        return v_lo
    v_hi = at(below + 1)
    with np.errstate(invalid="ignore"):
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
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(``Slope``, ``Rsquare``, ``Resi``, ``Mean``, ``Std``) of y over each window; the regression is on
    positions 1..W (the newest at W) with NaN elements left out.

    Rsquare is before Qlib's std mask (see ``std_is_zero``). Slope, Rsquare and Resi are NaN with fewer than two
    values in the window; Resi is also NaN when today's value is NaN.
    """
    y = as_rolling_input(y)
    ok, z = _centred(y, grid)
    m = ok.astype(np.float64)
    # rows: count, centred sum, centred squares, raw sum; lag-weighted sums of the first two; lag^2 of the first
    base = (np.stack([m, z, z * z, np.where(ok, y, 0.0)]), np.zeros((2, y.size)), np.zeros((1, y.size)))
    parts = _tree(base, windows, _combine_lagged)
    out = {}
    for w, (s, lag, quad) in parts.items():
        n, sz, szz, total = s
        ln, lz = lag
        sx = w * n - ln  # positions are x = w - lag
        sxx = w * w * n - 2 * w * ln + quad[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_x = sx / n
            dx = sxx - sx * mean_x
            dz = szz - sz * sz / n
            dxz = (w * sz - lz) - mean_x * sz
            dev = z - sz / n  # today's value minus the window mean
            mean = np.where(n > 0, total / n, np.nan)
        bad = _cancelled(n, dz, szz, grid)
        if bad.size:
            dx[bad], dz[bad], dxz[bad], mean_x[bad], dev[bad] = _exact_regression(y, bad, w)
        enough = n >= 2
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(enough, dxz / dx, np.nan)
            rsq = np.where(enough, (dxz * dxz) / (dx * dz), np.nan)
            resi = np.where(enough & ok, dev - slope * (w - mean_x), np.nan)
        out[w] = (slope, rsq, resi, mean, _std(dz, n))
    return out


def _exact_regression(y: np.ndarray, cells: np.ndarray, w: int) -> Arrays:
    """Centred two-pass (dx, dy, dxy, mean x, y_today - mean y) for the windows ending at ``cells``."""
    win = _gather_windows(y, cells, w)
    m = ~np.isnan(win)
    n = m.sum(axis=1)
    pos = np.broadcast_to(np.arange(1, w + 1, dtype=np.float64), win.shape)
    flat = _constant(win)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = np.where(m, pos, 0.0).sum(axis=1) / n
        mean_y = np.nanmean(win, axis=1)
        ex = np.where(m, pos - mean_x[:, None], 0.0)
        ey = np.where(m, win - mean_y[:, None], 0.0)
    ey[flat] = 0.0
    dev = np.where(flat, 0.0, win[:, -1] - mean_y)
    return (ex * ex).sum(axis=1), (ey * ey).sum(axis=1), (ex * ey).sum(axis=1), mean_x, dev


# ---------------------------------------------------------------- Corr


def rolling_corr(
    x: np.ndarray,
    y: np.ndarray,
    grid: Grid,
    windows: Sequence[int] = WINDOWS,
    side_std: tuple[bool, bool] = (True, True),
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray] | None, dict[int, np.ndarray] | None]:
    """Pairwise-complete Pearson correlation (pandas ``rolling.corr``): rows where either side is NaN/inf are
    dropped; NaN with fewer than two pairs or a constant side. Qlib's std mask is applied by the caller.

    Also returns each side's own ``Std`` over its own non-NaN values (what Qlib's mask uses), computed in the
    same pass, for the sides flagged in ``side_std`` (None for the others).
    """
    x = as_rolling_input(x)
    y = as_rolling_input(y)
    ok_x, ok_y = ~np.isnan(x), ~np.isnan(y)
    ok = ok_x & ok_y
    rows = [ok.astype(np.float64)]
    pair_x, pair_y = np.where(ok, x, np.nan), np.where(ok, y, np.nan)
    _, zx = _centred(pair_x, grid)
    _, zy = _centred(pair_y, grid)
    rows += [zx, zy, zx * zx, zy * zy, zx * zy]
    # a side whose own NaN pattern is the pair's has its std in the pair sums; otherwise add its own rows
    own: list[tuple[int, np.ndarray] | None] = []
    for want, values, mask in ((side_std[0], x, ok_x), (side_std[1], y, ok_y)):
        if not want or np.array_equal(mask, ok):
            own.append(None)
            continue
        _, z = _centred(values, grid)
        own.append((len(rows), values))
        rows += [mask.astype(np.float64), z, z * z]
    sums = window_sums(np.stack(rows), windows)
    del rows
    corr: dict[int, np.ndarray] = {}
    stds: list[dict[int, np.ndarray] | None] = [{} if side_std[0] else None, {} if side_std[1] else None]
    for w, s in sums.items():
        n, sx, sy, sxx, syy, sxy = s[:6]
        with np.errstate(divide="ignore", invalid="ignore"):
            dxx = sxx - sx * sx / n
            dyy = syy - sy * sy / n
            dxy = sxy - sx * sy / n
        bad = np.union1d(_cancelled(n, dxx, sxx, grid), _cancelled(n, dyy, syy, grid))
        if bad.size:
            dxx[bad], dyy[bad], dxy[bad] = _exact_cov(pair_x, pair_y, bad, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = dxy / np.sqrt(dxx * dyy)
        corr[w] = np.where((n >= 2) & (dxx > 0) & (dyy > 0), r, np.nan)
        for k, (side, pair_ss) in enumerate(((own[0], dxx), (own[1], dyy))):
            if stds[k] is None:
                continue
            if side is None:  # same pattern as the pair
                stds[k][w] = _std(pair_ss, n)
                continue
            at, values = side
            n_own, s1, s2 = s[at], s[at + 1], s[at + 2]
            with np.errstate(divide="ignore", invalid="ignore"):
                ss = s2 - s1 * (s1 / n_own)
            fix = _cancelled(n_own, ss, s2, grid)
            if fix.size:
                ss[fix] = _exact_ss(values, fix, w)
            stds[k][w] = _std(ss, n_own)
    return corr, stds[0], stds[1]


def _exact_cov(x: np.ndarray, y: np.ndarray, cells: np.ndarray, w: int) -> Arrays:
    wx = _gather_windows(x, cells, w)
    wy = _gather_windows(y, cells, w)
    with np.errstate(invalid="ignore"):
        ex = wx - np.nanmean(wx, axis=1, keepdims=True)
        ey = wy - np.nanmean(wy, axis=1, keepdims=True)
    ex[_constant(wx)] = 0.0
    ey[_constant(wy)] = 0.0
    return np.nansum(ex * ex, axis=1), np.nansum(ey * ey, axis=1), np.nansum(ex * ey, axis=1)
