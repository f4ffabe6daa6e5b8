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
import mmap
import threading
from collections.abc import Iterator, Sequence
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
    ``out_pos`` the cells that become output rows, in (instrument, date) order, which are rows
    ``row_start .. row_start + n_rows`` of the whole output.
    """

    fields: dict[str, np.ndarray | None]
    age: np.ndarray
    seg: np.ndarray
    n_seg: int
    out_pos: np.ndarray
    row_start: int

    @property
    def n_cells(self) -> int:
        return self.age.size

    @property
    def n_rows(self) -> int:
        return self.out_pos.size

    def field(self, name: str) -> np.ndarray | None:
        return self.fields.get(name)


@dataclass
class Layout:
    """All output rows (instrument, date) and the chunks of instruments that compute them."""

    instrument: pl.Series
    date: pl.Series
    grids: Iterator[Grid]

    @property
    def n_rows(self) -> int:
        return self.instrument.len()


def _new_column(n: int) -> np.ndarray:
    """Uninitialised float32 column backed by a plain anonymous mapping, populated up front.

    numpy asks for transparent huge pages on big arrays; with the kernel set to compact memory for such
    requests, first writes into gigabytes of output can stall for seconds. Ordinary pages, mapped in one go
    (MAP_POPULATE, where available) rather than faulted in one by one, cost a steady fraction of that.
    """
    if n == 0:
        return np.empty(0, np.float32)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    return np.frombuffer(mmap.mmap(-1, n * 4, flags=flags), dtype=np.float32)


class FrameBuilder:
    """Full-length float32 output columns that chunks write into; wrapped as a frame without copying."""

    def __init__(self, layout: Layout, columns: Sequence[str]) -> None:
        self.layout = layout
        self.columns = list(columns)
        self.arrays: dict[str, np.ndarray | None] = {}
        self._lock = threading.Lock()  # chunks may be written from several threads

    def sink(self, grid: Grid) -> Sink:
        return Sink(self, slice(grid.row_start, grid.row_start + grid.n_rows))

    def _array(self, name: str, present: bool) -> np.ndarray | None:
        with self._lock:  # the first chunk decides; a missing field is missing in every chunk
            if name not in self.arrays:
                self.arrays[name] = _new_column(self.layout.n_rows) if present else None
            return self.arrays[name]

    def frame(self) -> pl.DataFrame:
        """instrument, date, then each column as Float32 with NaN as null (None columns all-null)."""
        missing = [c for c in self.columns if c not in self.arrays]
        if missing:
            raise RuntimeError(f"feature columns never computed: {missing[:5]}")
        series = [self.layout.instrument, self.layout.date]
        nulls: pl.Series | None = None
        for name in self.columns:
            values = self.arrays.pop(name)
            if values is None:
                if nulls is None:
                    nulls = pl.repeat(None, self.layout.n_rows, dtype=pl.Float32, eager=True)
                series.append(nulls.alias(name))  # shares the buffer
            else:
                series.append(pl.Series(name, values, nan_to_null=True))  # values are not copied
        return pl.DataFrame(series)


class Sink:
    """One chunk's rows of every output column."""

    def __init__(self, builder: FrameBuilder, rows: slice) -> None:
        self._builder = builder
        self._rows = rows

    def dest(self, name: str) -> np.ndarray:
        """The float32 destination of column ``name`` for this chunk's rows, to be filled in place."""
        return self._builder._array(name, True)[self._rows]

    def put(self, name: str, values: np.ndarray | None) -> None:
        """Store this chunk's values of ``name`` (cast to float32 like Qlib's final ``astype``); ``None`` marks
        a column that is missing altogether (a missing input field)."""
        dest = self._builder._array(name, values is not None)
        if dest is not None and values is not None:
            dest[self._rows] = values


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each pair, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + (np.arange(total, dtype=np.int64) - offsets)


def _lazy_bars(bars: pl.DataFrame | pl.LazyFrame, required: Sequence[str]) -> tuple[pl.LazyFrame, list[str]]:
    if isinstance(bars, pl.DataFrame):
        bars = bars.lazy()
    if not isinstance(bars, pl.LazyFrame):
        raise TypeError(f"bars must be a polars DataFrame or LazyFrame, got {type(bars).__name__}")
    schema = bars.collect_schema()
    missing = [c for c in ("instrument", "date", *required) if c not in schema]
    if missing:
        raise ValueError(f"bars is missing column(s) {missing}; it has {list(schema)}")
    return bars.with_columns(pl.col("instrument").cast(pl.Utf8), pl.col("date").cast(pl.Date)), list(schema)


def _calendar_index(cal: np.ndarray, days: np.ndarray, instruments: pl.Series) -> np.ndarray:
    """Calendar position of each date; every date must be a trading day."""
    t = np.searchsorted(cal, days)
    off = (t >= cal.size) | (cal[np.minimum(t, cal.size - 1)] != days)
    if off.any():
        k = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"bars has {int(off.sum())} instrument(s)/row(s) on dates outside the calendar, e.g. instrument "
            f"{instruments[k]} on {days[k]}"
        )
    return t


def build_layout(
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    fields: Sequence[str],
    required: Sequence[str],
    start: DateLike = None,
    end: DateLike = None,
    lookback: int = 0,
    horizon: int = 0,
    chunk_cells: int = CHUNK_CELLS,
) -> Layout:
    """Lay ``bars`` out on ``calendar``; the layout's ``grids`` yields groups of whole instruments.

    Output rows are every calendar day from each instrument's first to last bar in ``bars``, limited to
    [start, end]. Only bars from ``lookback`` days before ``start`` to ``horizon`` days after ``end`` are
    materialised (so a LazyFrame over the whole history is cheap), which is all an expression with that reach
    needs. Fields absent from ``bars`` (or optional and all-null there) come back as None.
    """
    if lookback > PAD or horizon > PAD:
        raise ValueError(f"lookback/horizon beyond {PAD} days are not supported")
    cal = to_calendar(calendar)
    lazy, columns = _lazy_bars(bars, required)

    s_day, e_day = to_day(start, "start"), to_day(end, "end")
    if s_day is not None and e_day is not None and s_day > e_day:
        raise ValueError(f"start {start} is after end {end}")
    s_idx = 0 if s_day is None else int(np.searchsorted(cal, s_day, "left"))
    e_idx = cal.size - 1 if e_day is None else int(np.searchsorted(cal, e_day, "right")) - 1
    lo, hi = max(0, s_idx - lookback), e_idx + horizon

    # Spans come from all bars, so history cut before lo does not move an instrument's first day.
    spans = lazy.group_by("instrument").agg(pl.col("date").min().alias("f"), pl.col("date").max().alias("l"))
    spans = spans.sort("instrument").collect()
    if spans["instrument"].null_count():
        raise ValueError("bars has rows with a null instrument")
    names = spans["instrument"]
    first = _calendar_index(cal, spans["f"].to_numpy().astype("datetime64[D]"), names)
    last = _calendar_index(cal, spans["l"].to_numpy().astype("datetime64[D]"), names)

    lo_day, hi_day = cal[lo], cal[min(hi, cal.size - 1)]
    present_in_bars = [f for f in fields if f in columns]
    frame = (
        lazy.filter(pl.col("date").is_between(lo_day.item(), hi_day.item()))
        .select("instrument", "date", *[pl.col(f).cast(pl.Float32) for f in present_in_bars])
        .collect()
    )
    # An optional field that is absent or entirely null yields None arrays (all-null features).
    present = [f for f in present_in_bars if f in required or frame[f].null_count() < frame.height]
    t = _calendar_index(cal, frame["date"].to_numpy().astype("datetime64[D]"), frame["instrument"])
    code = names.search_sorted(frame["instrument"]).to_numpy().astype(np.int64)

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
    out_len = (out_last - out_first + 1)[kept]
    cal_days = pl.Series(cal).cast(pl.Date)
    instrument = names.gather(np.repeat(kept, out_len)).alias("instrument")
    date = cal_days.gather(_ranges(out_first[kept], out_len)).alias("date")
    row_start = np.cumsum(out_len) - out_len

    def grids() -> Iterator[Grid]:
        # chunks of whole instruments, each a contiguous slice of the global layout
        ends = np.cumsum(stride[kept])
        chunk_of = (ends - 1) // max(chunk_cells, 1)
        for chunk in np.unique(chunk_of):
            sel = np.flatnonzero(chunk_of == chunk)
            members = kept[sel]
            lo_cell = int(base[members[0]] - PAD)
            hi_cell = int(base[members[-1]] + seg_len[members[-1]] + PAD)
            yield _grid(
                {k: None if v is None else v[lo_cell:hi_cell] for k, v in values.items()},
                hi_cell - lo_cell,
                base[members] - lo_cell,
                seg_len[members],
                out_first[members] - seg_first[members],
                out_len[sel],
                int(row_start[sel[0]]),
            )

    return Layout(instrument, date, grids())


def _grid(
    fields: dict[str, np.ndarray | None],
    n_cells: int,
    base: np.ndarray,
    seg_len: np.ndarray,
    out_offset: np.ndarray,
    out_len: np.ndarray,
    row_start: int,
) -> Grid:
    n = base.size
    seg_cells = _ranges(base, seg_len)
    age = np.full(n_cells, -1, dtype=np.int32)
    age[seg_cells] = _ranges(np.zeros(n, dtype=np.int64), seg_len)
    seg = np.full(n_cells, -1, dtype=np.int32)
    seg[seg_cells] = np.repeat(np.arange(n, dtype=np.int32), seg_len)
    return Grid(fields, age, seg, n, _ranges(base + out_offset, out_len), row_start)


def empty_frame(columns: Sequence[str]) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {"instrument": pl.Utf8(), "date": pl.Date()}
    schema.update({c: pl.Float32() for c in columns})
    return pl.DataFrame(schema=schema)
