"""Index construction of Qlib's TSDataSampler, vectorised.

TSDataSampler lays the fetched rows on a (date × instrument) grid of row numbers, over the dates and instruments
present in the fetched data (instruments sorted by name). The window of the sample at grid cell (i, j) is the
column j cells i-step_len+1 .. i; cells before the grid start or without a row are missing. ``fillna_type``
then fills the missing cells *within the window*: "ffill" from the previous present cell (leading gaps stay
missing), "ffill+bfill" additionally from the next one, "none" not at all. Missing cells point at a padding row.
"""

from __future__ import annotations

import numpy as np

FILLNA_TYPES = ("none", "ffill", "ffill+bfill")
# Samples per chunk when gathering windows (bounds the [chunk, step_len] int64 temporaries).
_CHUNK = 262_144


def extended_start(calendar: np.ndarray, start: np.datetime64, step_len: int) -> np.datetime64 | None:
    """TSDatasetH's fetch start: the calendar date ``step_len`` rows before the first date >= start."""
    i = int(np.searchsorted(calendar, start, side="left"))
    if i >= len(calendar):
        return None
    return calendar[max(0, i - step_len)]


def _ffill_within(win: np.ndarray) -> np.ndarray:
    """Forward-fill -1 entries along axis 1 from the previous entry >= 0 (a leading -1 stays -1)."""
    steps = np.arange(win.shape[1])
    src = np.where(win >= 0, steps, 0)
    np.maximum.accumulate(src, axis=1, out=src)
    return np.take_along_axis(win, src, axis=1)


def fill_windows(win: np.ndarray, fillna_type: str) -> np.ndarray:
    if fillna_type == "none":
        return win
    win = _ffill_within(win)
    if fillna_type == "ffill":
        return win
    return _ffill_within(win[:, ::-1])[:, ::-1]


def sequence_index(
    date_idx: np.ndarray,
    inst_codes: np.ndarray,
    n_dates: int,
    is_sample: np.ndarray,
    step_len: int,
    fillna_type: str,
    pad_row: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Samples and their windows for rows 0..n-1 of the fetched data.

    ``date_idx`` is each row's position among the fetched dates, ``inst_codes`` its instrument (codes ordered as
    the names), ``is_sample`` marks the rows dated inside the segment. Returns the sample rows, ordered by
    instrument then date as TSDataSampler, and the int64 windows ``[n_samples, step_len]`` (oldest first) with
    missing cells set to ``pad_row``.
    """
    if fillna_type not in FILLNA_TYPES:
        raise ValueError(f"fillna_type={fillna_type!r} is not one of {list(FILLNA_TYPES)}")
    if step_len < 1:
        raise ValueError(f"step_len must be >= 1, got {step_len}")
    n = len(date_idx)
    cols, col_idx = np.unique(inst_codes, return_inverse=True)
    grid = np.full((n_dates + step_len - 1, len(cols)), -1, dtype=np.int64)
    grid[date_idx + step_len - 1, col_idx] = np.arange(n, dtype=np.int64)

    cand = np.flatnonzero(is_sample)
    samples = cand[np.lexsort((date_idx[cand], col_idx[cand]))]
    windows = np.empty((len(samples), step_len), dtype=np.int64)
    offsets = np.arange(step_len, dtype=np.int64)
    for lo in range(0, len(samples), _CHUNK):
        s = samples[lo : lo + _CHUNK]
        # Grid rows of the window, oldest first: padded position date_idx + step_len - 1 is the sample's own day.
        win = grid[date_idx[s, None] + offsets[None, :], col_idx[s, None]]
        win = fill_windows(win, fillna_type)
        win[win < 0] = pad_row
        windows[lo : lo + len(s)] = win
    return samples, windows
