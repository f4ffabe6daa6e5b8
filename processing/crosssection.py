"""Per-day (cross-sectional) numpy kernels over a (date, instrument)-sorted block.

Days are contiguous row runs given by ``starts`` (first row of each day). The kernels are vectorised over days
with ``reduceat`` / one sort per column, never looping over dates; wide blocks are processed in row chunks of
whole days to bound the temporaries.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# Rows per chunk for the 2-D kernels (whole days only).
_CHUNK_ROWS = 200_000


def day_chunks(starts: np.ndarray, n_rows: int, max_rows: int = _CHUNK_ROWS) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (lo, hi, local_starts) covering whole days with about ``max_rows`` rows each."""
    if n_rows == 0:
        return
    bounds = np.append(starts, n_rows)
    i = 0
    n_days = len(starts)
    while i < n_days:
        lo = int(bounds[i])
        j = int(np.searchsorted(bounds, lo + max_rows, side="right")) - 1
        j = min(max(j, i + 1), n_days)
        hi = int(bounds[j])
        yield lo, hi, (starts[i:j] - lo).astype(np.int64)
        i = j


def _day_lengths(starts: np.ndarray, n_rows: int) -> np.ndarray:
    return np.diff(np.append(starts, n_rows))


def day_ids(starts: np.ndarray, n_rows: int) -> np.ndarray:
    return np.repeat(np.arange(len(starts), dtype=np.int64), _day_lengths(starts, n_rows))


def zscore(block: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(x - mean) / std per day and column, NaN skipped, std with ddof=1 (pandas); float32 out."""
    out = np.empty_like(block, dtype=np.float32)
    for lo, hi, st in day_chunks(starts, len(block)):
        x = block[lo:hi].astype(np.float64)
        lengths = _day_lengths(st, hi - lo)
        valid = ~np.isnan(x)
        cnt = np.add.reduceat(valid, st, axis=0, dtype=np.int64).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            total = np.add.reduceat(np.where(valid, x, 0.0), st, axis=0)
            mean = total / cnt
            dev = x - np.repeat(mean, lengths, axis=0)
            ss = np.add.reduceat(np.where(valid, dev * dev, 0.0), st, axis=0)
            std = np.sqrt(ss / (cnt - 1))
            std[cnt < 2] = np.nan
            out[lo:hi] = dev / np.repeat(std, lengths, axis=0)
    return out


def _sorted_within_days(x: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Order that sorts ``x`` inside each day (NaN last), days kept in place."""
    return np.lexsort((x, ids))


def _day_medians(sorted_x: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of each day's non-NaN values, given values sorted within days with NaN last."""
    med = np.full(len(starts), np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    med[has] = (sorted_x[lo].astype(np.float64) + sorted_x[hi].astype(np.float64)) / 2.0
    return med


def robust_zscore_column(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per day: x - median, MAD = median(|x - median|), clip((x - median) / MAD / 1.4826, -3, 3); no epsilon."""
    n = len(x)
    ids = day_ids(starts, n)
    lengths = _day_lengths(starts, n)
    counts = np.add.reduceat(~np.isnan(x), starts, dtype=np.int64) if n else np.zeros(0, np.int64)
    xs = x.astype(np.float64)
    med = _day_medians(xs[_sorted_within_days(xs, ids)], starts, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = xs - np.repeat(med, lengths)
        dev = np.abs(centred)
        mad = _day_medians(dev[_sorted_within_days(dev, ids)], starts, counts)
        scaled = centred / np.repeat(mad, lengths) / 1.4826
    return np.clip(scaled, -3.0, 3.0).astype(np.float32)


def rank_pct_column(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per day percentile rank, average method for ties, NaN kept; the denominator counts non-NaN values."""
    n = len(x)
    out = np.full(n, np.nan, dtype=np.float64)
    if n == 0:
        return out
    ids = day_ids(starts, n)
    order = _sorted_within_days(x, ids)
    sx, sid = x[order], ids[order]
    counts = np.add.reduceat(~np.isnan(x), starts, dtype=np.int64)
    pos = np.arange(n) - starts[sid]  # position inside the day, in sorted order
    valid = pos < counts[sid]
    # A tie run starts where the day changes or the value changes.
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (sid[1:] != sid[:-1]) | (sx[1:] != sx[:-1])
    run_id = np.cumsum(new_run) - 1
    run_first = np.flatnonzero(new_run)
    run_last = np.append(run_first[1:], n) - 1
    first_pos = run_first[run_id] - starts[sid]
    last_pos = run_last[run_id] - starts[sid]
    avg_rank = (first_pos + last_pos) / 2.0 + 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = avg_rank / counts[sid]
    out[order[valid]] = pct[valid]
    return out


def replace_inf_with_day_mean(block: np.ndarray, starts: np.ndarray) -> None:
    """In place: each ±inf becomes the mean of the finite values of its column on its day (NaN if none)."""
    n = len(block)
    if n == 0:
        return
    inf_rows = np.zeros(n, dtype=bool)
    for lo, hi, _ in day_chunks(starts, n):
        inf_rows[lo:hi] = np.isinf(block[lo:hi]).any(axis=1)
    if not inf_rows.any():
        return
    ids = day_ids(starts, n)
    days = np.unique(ids[inf_rows])
    lengths = _day_lengths(starts, n)
    rows = np.flatnonzero(np.isin(ids, days))
    sub = block[rows].astype(np.float64)
    sub_starts = np.concatenate(([0], np.cumsum(lengths[days])[:-1])).astype(np.int64)
    finite = np.isfinite(sub)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(np.where(finite, sub, 0.0), sub_starts, axis=0) / np.add.reduceat(
            finite, sub_starts, axis=0, dtype=np.int64
        )
    fill = np.repeat(mean, lengths[days], axis=0)
    is_inf = np.isinf(sub)
    sub[is_inf] = fill[is_inf]
    block[rows] = sub.astype(block.dtype)
