"""Bars laid out on the trading calendar, the way Qlib's expression engine sees them.

Qlib evaluates every expression on one series per instrument that covers every calendar day from the
instrument's first to its last bar (days without a bar are NaN), so ``Ref`` and rolling windows count calendar
positions, not valid observations. This module builds that layout for many instruments at once as one flat
array per field: each instrument's segment is preceded by ``PAD`` NaN cells (and the last one followed by
``PAD`` cells), so a shift or window of up to ``PAD`` days never reaches another instrument's data. Kernels in
``features.ops`` then work on whole flat arrays without any per-instrument loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

# Longer than any look-back (60) or look-ahead (2) used by Alpha158/Alpha360/label.
PAD = 64
# Instruments are processed in groups of about this many cells to bound temporary memory.
CHUNK_CELLS = 50_000

CalendarLike = Sequence[dt.date] | pl.Series | np.ndarray
DateLike = dt.date | dt.datetime | str | np.datetime64 | None


def to_calendar(calendar: CalendarLike) -> np.ndarray:
    """The trading calendar as a strictly increasing ``datetime64[D]`` array."""
    if isinstance(calendar, pl.Series):
        cal = calendar.cast(pl.Date).to_numpy().astype("datetime64[D]")
    else:
        cal = np.asarray(calendar).astype("datetime64[D]")
    if cal.ndim != 1 or cal.size == 0:
        raise ValueError("calendar must be a non-empty 1-D sequence of dates")
    if np.isnat(cal).any():
        raise ValueError("calendar contains null dates")
    if (np.diff(cal).astype(np.int64) <= 0).any():
        raise ValueError("calendar must be sorted and free of duplicates")
    return cal


def to_day(value: DateLike, name: str) -> np.datetime64 | None:
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return np.datetime64(dt.date.fromisoformat(value[:10]), "D")
        return np.datetime64(value, "D")
    except (ValueError, TypeError):
        raise ValueError(f"{name}={value!r} is not a date") from None


@dataclass
class Grid:
    """One group of instruments on the flat padded layout.

    ``fields`` hold float32 values (NaN where there is no bar); ``age`` is the number of days since the
    segment's first cell (negative on padding); ``seg`` the segment number of each cell (-1 on padding);
    ``out_pos`` the cells that become output rows, in (instrument, date) order.
    """

    fields: dict[str, np.ndarray | None]
    age: np.ndarray
    seg: np.ndarray
    n_seg: int
    out_pos: np.ndarray
    out_instrument: pl.Series
    out_date: pl.Series

    @property
    def n_cells(self) -> int:
        return self.age.size

    @property
    def n_rows(self) -> int:
        return self.out_pos.size

    def field(self, name: str) -> np.ndarray | None:
        return self.fields.get(name)

    def frame(self, columns: Iterable[tuple[str, np.ndarray | None]]) -> pl.DataFrame:
        """Output frame: instrument, date, then each column as Float32 with NaN turned into null.

        ``columns`` may be a generator: each array is converted and released before the next is made.
        A ``None`` array gives an all-null column (a missing input field).
        """
        series = [self.out_instrument, self.out_date]
        nulls: pl.Series | None = None
        for name, values in columns:
            if values is None:
                if nulls is None:
                    nulls = pl.repeat(None, self.n_rows, dtype=pl.Float32, eager=True)
                series.append(nulls.alias(name))  # shares the buffer
            else:
                series.append(pl.Series(name, values.astype(np.float32, copy=False), nan_to_null=True))
        return pl.DataFrame(series)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each pair, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + (np.arange(total, dtype=np.int64) - offsets)


def _collect_bars(bars: pl.DataFrame | pl.LazyFrame, fields: Sequence[str], required: Sequence[str]) -> pl.DataFrame:
    lazy = bars.lazy() if isinstance(bars, pl.DataFrame) else bars
    if not isinstance(lazy, pl.LazyFrame):
        raise TypeError(f"bars must be a polars DataFrame or LazyFrame, got {type(bars).__name__}")
    schema = lazy.collect_schema()
    missing = [c for c in ("instrument", "date", *required) if c not in schema]
    if missing:
        raise ValueError(f"bars is missing column(s) {missing}; it has {list(schema)}")
    present = [f for f in fields if f in schema]
    return lazy.select(
        pl.col("instrument").cast(pl.Utf8),
        pl.col("date").cast(pl.Date),
        *[pl.col(f).cast(pl.Float32) for f in present],
    ).collect()


def build_grids(
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    fields: Sequence[str],
    required: Sequence[str],
    start: DateLike = None,
    end: DateLike = None,
    lookback: int = 0,
    horizon: int = 0,
    chunk_cells: int = CHUNK_CELLS,
) -> Iterator[Grid]:
    """Lay ``bars`` out on ``calendar`` and yield groups of whole instruments.

    Output rows are every calendar day from each instrument's first to last bar, limited to [start, end]. Only
    cells from ``lookback`` days before ``start`` to ``horizon`` days after ``end`` are filled, which is all an
    expression with that reach needs. Fields absent from ``bars`` (or optional and all-null) come back as None.
    """
    if lookback > PAD or horizon > PAD:
        raise ValueError(f"lookback/horizon beyond {PAD} days are not supported")
    cal = to_calendar(calendar)
    frame = _collect_bars(bars, fields, required)
    if frame["instrument"].null_count():
        raise ValueError("bars has rows with a null instrument")
    # An optional field that is absent or entirely null yields None arrays (all-null features).
    present = [
        f for f in fields if f in frame.columns and (f in required or frame[f].null_count() < frame.height)
    ]

    # calendar position of every bar
    days = frame["date"].to_numpy().astype("datetime64[D]")
    t = np.searchsorted(cal, days)
    off = (t >= cal.size) | (cal[np.minimum(t, cal.size - 1)] != days)
    if off.any():
        k = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"bars has {int(off.sum())} row(s) on dates outside the calendar, e.g. instrument "
            f"{frame['instrument'][k]} on {days[k]}"
        )
    names = frame["instrument"].unique().sort()
    code = names.search_sorted(frame["instrument"]).to_numpy().astype(np.int64)

    s_day, e_day = to_day(start, "start"), to_day(end, "end")
    if s_day is not None and e_day is not None and s_day > e_day:
        raise ValueError(f"start {start} is after end {end}")
    s_idx = 0 if s_day is None else int(np.searchsorted(cal, s_day, "left"))
    e_idx = cal.size - 1 if e_day is None else int(np.searchsorted(cal, e_day, "right")) - 1
    lo, hi = max(0, s_idx - lookback), e_idx + horizon

    # Spans come from all bars given, so trimming history does not move an instrument's first day.
    n_all = names.len()
    first = np.full(n_all, np.iinfo(np.int64).max)
    last = np.full(n_all, -1)
    np.minimum.at(first, code, t)
    np.maximum.at(last, code, t)
    out_first, out_last = np.maximum(first, s_idx), np.minimum(last, e_idx)
    keep = out_first <= out_last
    seg_first, seg_last = np.maximum(first, lo), np.minimum(last, hi)

    # global flat layout: PAD, segment 0, PAD, segment 1, ..., PAD
    seg_len = np.where(keep, seg_last - seg_first + 1, 0)
    stride = np.where(keep, seg_len + PAD, 0)
    base = PAD + np.cumsum(stride) - stride
    n_cells = int(PAD + stride.sum())
    inside = keep[code] & (t >= seg_first[code]) & (t <= seg_last[code])
    cell = base[code[inside]] + (t[inside] - seg_first[code[inside]])
    if np.bincount(cell, minlength=n_cells).max(initial=0) > 1:
        dup = frame.filter(frame.select(["instrument", "date"]).is_duplicated()).row(0, named=True)
        raise ValueError(f"bars has duplicate rows for instrument {dup['instrument']} on {dup['date']}")
    values: dict[str, np.ndarray | None] = {}
    for name in fields:
        if name not in present:
            values[name] = None
            continue
        arr = np.full(n_cells, np.nan, dtype=np.float32)
        arr[cell] = frame[name].fill_null(np.nan).to_numpy()[inside]
        values[name] = arr
    del frame

    kept = np.flatnonzero(keep)
    cal_days = pl.Series(cal).cast(pl.Date)
    # chunks of whole instruments, each a contiguous slice of the global layout
    ends = np.cumsum(stride[kept])
    chunk_of = (ends - 1) // max(chunk_cells, 1)
    for chunk in np.unique(chunk_of):
        members = kept[chunk_of == chunk]
        lo_cell = int(base[members[0]] - PAD)
        hi_cell = int(base[members[-1]] + seg_len[members[-1]] + PAD)
        yield _grid(
            {k: None if v is None else v[lo_cell:hi_cell] for k, v in values.items()},
            base[members] - lo_cell,
            seg_len[members],
            out_first[members] - seg_first[members],
            out_last[members] - out_first[members] + 1,
            out_first[members],
            names.gather(members),
            cal_days,
        )


def _grid(
    fields: dict[str, np.ndarray | None],
    base: np.ndarray,
    seg_len: np.ndarray,
    out_offset: np.ndarray,
    out_len: np.ndarray,
    out_first: np.ndarray,
    names: pl.Series,
    cal_days: pl.Series,
) -> Grid:
    n = base.size
    n_cells = next(iter(fields.values())).size if any(v is not None for v in fields.values()) else 0
    n_cells = n_cells or int(base[-1] + seg_len[-1] + PAD)
    seg_cells = _ranges(base, seg_len)
    age = np.full(n_cells, -1, dtype=np.int32)
    age[seg_cells] = _ranges(np.zeros(n, dtype=np.int64), seg_len)
    seg = np.full(n_cells, -1, dtype=np.int32)
    seg[seg_cells] = np.repeat(np.arange(n, dtype=np.int32), seg_len)
    return Grid(
        fields=fields,
        age=age,
        seg=seg,
        n_seg=n,
        out_pos=_ranges(base + out_offset, out_len),
        out_instrument=names.gather(np.repeat(np.arange(n), out_len)).alias("instrument"),
        out_date=cal_days.gather(_ranges(out_first, out_len)).alias("date"),
    )


def empty_frame(columns: Sequence[str]) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {"instrument": pl.Utf8(), "date": pl.Date()}
    schema.update({c: pl.Float32() for c in columns})
    return pl.DataFrame(schema=schema)
