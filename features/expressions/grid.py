"""Bars laid out as Qlib's expression engine sees them, as one Polars frame of all instruments.

Qlib evaluates an expression on one series per instrument that has a row on every calendar day from the
instrument's first to its last bar (days without a bar are NaN): shifts and windows count calendar positions.
Here every instrument's rows are preceded by ``pad`` padding rows (NaN fields, ``_seg`` = -1), so that a shift
or window of up to ``pad`` days evaluated over the whole column never reaches another instrument, and needs no
per-instrument grouping. Operators with longer memory group by ``_seg`` instead.

Columns: ``_seg`` (Int32, the instrument's number in ``instruments``; -1 on padding), ``_t`` (Int32 calendar
position), ``_out`` (Boolean: an output row), ``_member`` (Boolean, when a members frame is given), then the
fields as Float32 named ``$name`` (so no field name can collide with these) with NaN where there is no bar or
value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from features.dates import DateLike, to_day
from features.expressions.nodes import UNBOUNDED

CalendarLike = Sequence[dt.date] | pl.Series | np.ndarray


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


@dataclass
class PaddedGrid:
    frame: pl.DataFrame
    instruments: pl.Series  # names, sorted; _seg indexes into it
    calendar: pl.Series  # Date; _t indexes into it
    pad: int
    longest: int  # rows of the longest instrument segment (an expanding window never needs more)
    present: frozenset[str]  # fields with data; the others are all-NaN and make their columns all-null
    blocks: np.ndarray  # first row (its padding) of each instrument's block, then the frame's height
    start_t: int | None = None  # calendar index of the first output day asked for (None: from the first day)

    def chunks(self, rows: int) -> list[tuple[int, int]]:
        """(offset, length) slices of whole instrument blocks of about ``rows`` rows each."""
        out, begin = [], 0
        for i in range(1, self.blocks.size):
            if self.blocks[i] - self.blocks[begin] >= rows or i == self.blocks.size - 1:
                out.append((int(self.blocks[begin]), int(self.blocks[i] - self.blocks[begin])))
                begin = i
        return out


def _lazy(bars: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    if isinstance(bars, pl.DataFrame):
        return bars.lazy()
    if not isinstance(bars, pl.LazyFrame):
        raise TypeError(f"bars must be a polars DataFrame or LazyFrame, got {type(bars).__name__}")
    return bars


def _calendar_index(cal: np.ndarray, days: np.ndarray, instruments: pl.Series) -> np.ndarray:
    """Calendar position of each date (``datetime64[D]``, or integer days since 1970-01-01 as Polars stores a
    Date); every date must be a trading day."""
    ordinal = days.view(np.int64) if days.dtype.kind == "M" else days  # NaT is the least int64
    if days.size > 64 * cal.size:
        # a table from day number to position: one lookup per row instead of a binary search (35 -> 10 ms for
        # the CSI300 history)
        first = cal[0].astype(np.int64)
        table = np.full(int(cal[-1].astype(np.int64) - first) + 2, -1, dtype=np.int32)
        table[cal.astype(np.int64) - first] = np.arange(cal.size)
        slot = ordinal - first.astype(ordinal.dtype)
        np.clip(slot, -1, table.size - 1, out=slot)  # -1 and the last slot: outside the calendar
        # in place where the types allow; -1 wraps round to the last slot
        t = np.take(table, slot, out=slot if slot.dtype == table.dtype else None, mode="wrap")
        off = t < 0
    else:
        on_days = ordinal.astype("datetime64[D]")
        t = np.searchsorted(cal, on_days)
        off = (t >= cal.size) | (cal[np.minimum(t, cal.size - 1)] != on_days)
    if off.any():
        k = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"bars has {int(off.sum())} instrument(s)/row(s) on dates outside the calendar, e.g. instrument "
            f"{instruments[k]} on {ordinal[k : k + 1].astype('datetime64[D]')[0]}"
        )
    return t


def _instrument_runs(names: pl.Series, instruments: pl.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(position in ``names``, row count) of each run of equal instruments when the rows are grouped by
    instrument in name order (as the warehouse and the readers deliver them; one entry per instrument), else
    None. ``names`` is sorted and holds every instrument of the rows."""
    runs = instruments.rle()
    values = runs.struct.field("value")
    if values.len() > 1 and not (values.slice(1) > values.slice(0, values.len() - 1)).all():
        return None
    return names.search_sorted(values).to_numpy(), runs.struct.field("len").to_numpy()


def build_grid(
    bars: pl.DataFrame | pl.LazyFrame,
    calendar: CalendarLike,
    fields: Collection[str],
    required: Collection[str],
    start: DateLike | None,
    end: DateLike | None,
    *,
    lookback: int,
    horizon: int,
    pad: int,
    keep_idle: bool,
    members: pl.DataFrame | None = None,
) -> PaddedGrid:
    """The padded frame of every instrument with a bar, limited to ``lookback`` days before ``start`` and
    ``horizon`` days after ``end`` (each instrument's first and last day still come from all of ``bars``).

    ``keep_idle`` keeps instruments that have rows in that range but none in [start, end] (cross-sectional
    operators over the look-back days need them).
    """
    cal = to_calendar(calendar)
    lazy = _lazy(bars)
    schema = lazy.collect_schema()
    missing = [c for c in ("instrument", "date", *sorted(required)) if c not in schema]
    if missing:
        raise ValueError(f"bars is missing column(s) {missing}; it has {list(schema)}")
    lazy = lazy.with_columns(pl.col("instrument").cast(pl.Utf8), pl.col("date").cast(pl.Date))
    s_day, e_day = to_day(start, "start"), to_day(end, "end")
    if s_day is not None and e_day is not None and s_day > e_day:
        raise ValueError(f"start {start} is after end {end}")
    s_idx = 0 if s_day is None else int(np.searchsorted(cal, s_day, "left"))
    e_idx = cal.size - 1 if e_day is None else int(np.searchsorted(cal, e_day, "right")) - 1
    lo = 0 if lookback >= UNBOUNDED else max(0, s_idx - lookback)
    hi = min(cal.size - 1, e_idx + horizon)

    spans = lazy.group_by("instrument").agg(pl.col("date").min().alias("f"), pl.col("date").max().alias("l"))
    spans = spans.sort("instrument").collect()
    if spans["instrument"].null_count():
        raise ValueError("bars has rows with a null instrument")
    names = spans["instrument"]
    first = _calendar_index(cal, spans["f"].to_numpy().astype("datetime64[D]"), names)
    last = _calendar_index(cal, spans["l"].to_numpy().astype("datetime64[D]"), names)

    present_in_bars = [f for f in sorted(fields) if f in schema]
    frame = (
        lazy.filter(pl.col("date").is_between(cal[lo].item(), cal[min(hi, cal.size - 1)].item()))
        .select("instrument", "date", *[pl.col(f).cast(pl.Float32) for f in present_in_bars])
        .collect()
    )
    present = frozenset(f for f in present_in_bars if f in required or frame[f].null_count() < frame.height)

    seg_first, seg_last = np.maximum(first, lo), np.minimum(last, hi)
    has_out = np.maximum(first, s_idx) <= np.minimum(last, e_idx)
    keep = seg_first <= seg_last
    if not keep_idle:
        keep &= has_out
    if not has_out.any():
        keep[:] = False
    kept = np.flatnonzero(keep)
    seg_len = (seg_last - seg_first + 1)[kept]
    stride = seg_len + pad
    base = np.cumsum(stride) - seg_len  # first real row of each kept instrument
    n_rows = int(stride.sum())
    slot = np.full(names.len(), -1, dtype=np.int32)  # instrument number -> kept number
    slot[kept] = np.arange(kept.size)

    # Polars' days since 1970 as they are stored (no copy; the date filter above left no null)
    t = _calendar_index(cal, frame["date"].to_physical().to_numpy(), frame["instrument"])
    # The rows were cut to [lo, hi], and an instrument's rows lie between its first and last day, so every row of
    # a kept instrument falls within its segment: its grid row is its calendar position plus the instrument's
    # offset.
    to_row = (base - seg_first[kept]).astype(np.int64 if n_rows >= 1 << 31 else np.int32)
    runs = _instrument_runs(names, frame["instrument"])
    if runs is None:  # rows in any order: each row's instrument by binary search
        code = slot[names.search_sorted(frame["instrument"]).to_numpy()]
        inside = code >= 0
        every = bool(inside.all())
        row = t + to_row[code] if every else t[inside] + to_row[code[inside]]
        del code
    else:  # one offset per run, added in place
        run_slot, run_len = slot[runs[0]], runs[1]
        kept_run = run_slot >= 0
        every = bool(kept_run.all())
        inside = None if every else np.repeat(kept_run, run_len)
        row = t.astype(to_row.dtype, copy=False) if every else t[inside].astype(to_row.dtype, copy=False)
        row += np.repeat(to_row[run_slot[kept_run]], run_len[kept_run])
    del t
    # rows delivered in grid order (the warehouse's and the readers' order) are strictly increasing: no duplicate
    if row.size > 1 and not (row[1:] > row[:-1]).all() and np.bincount(row, minlength=n_rows).max() > 1:
        dup = frame.filter(frame.select(["instrument", "date"]).is_duplicated()).row(0, named=True)
        raise ValueError(f"bars has duplicate rows for instrument {dup['instrument']} on {dup['date']}")

    # blocks of padding then real rows, one pair per kept instrument
    lengths = np.column_stack([np.full(kept.size, pad), seg_len]).ravel()
    seg = np.repeat(np.column_stack([np.full(kept.size, -1), np.arange(kept.size)]).ravel().astype(np.int32), lengths)
    tt = np.arange(n_rows, dtype=np.int64 if n_rows >= 1 << 31 else np.int32)
    tt -= np.repeat(np.column_stack([np.zeros_like(to_row), to_row]).ravel(), lengths)
    padding = seg < 0
    tt[padding] = 0
    columns: dict[str, pl.Series] = {
        "_seg": pl.Series("_seg", seg),
        "_t": pl.Series("_t", tt.astype(np.int32, copy=False)),
        "_out": pl.Series("_out", ~padding & (tt >= s_idx) & (tt <= e_idx)),
    }
    if members is not None:
        columns["_member"] = pl.Series("_member", _member_mask(members, cal, names, slot, base, seg_first[kept],
                                                                seg_len, n_rows))  # fmt: skip
    for name in sorted(fields):
        if name not in present:
            continue
        values = np.full(n_rows, np.nan, dtype=np.float32)
        source = frame[name].fill_null(np.nan).to_numpy()
        values[row] = source if every else source[inside]
        columns[f"${name}"] = pl.Series(f"${name}", values)
    longest = int(seg_len.max()) if seg_len.size else 1
    blocks = np.append(base - pad, n_rows)
    return PaddedGrid(pl.DataFrame(columns), names.gather(kept), pl.Series("date", cal).cast(pl.Date), pad, longest,
                      present, blocks, None if s_day is None else s_idx)  # fmt: skip


def _member_mask(
    members: pl.DataFrame,
    cal: np.ndarray,
    names: pl.Series,
    slot: np.ndarray,
    base: np.ndarray,
    seg_first: np.ndarray,
    seg_len: np.ndarray,
    n_rows: int,
) -> np.ndarray:
    """True on the rows whose (instrument, date) is in ``members``."""
    if not {"instrument", "date"} <= set(members.columns):
        raise ValueError(f"members must have instrument and date columns, it has {members.columns}")
    m = members.select(pl.col("instrument").cast(pl.Utf8), pl.col("date").cast(pl.Date)).drop_nulls()
    m = m.filter(pl.col("instrument").is_in(names.implode()))
    days = m["date"].to_numpy().astype("datetime64[D]")
    t = np.searchsorted(cal, days)
    on_cal = (t < cal.size) & (cal[np.minimum(t, cal.size - 1)] == days)
    code = slot[names.search_sorted(m["instrument"]).to_numpy()]
    ok = on_cal & (code >= 0)
    code, t = code[ok], t[ok]
    age = t - seg_first[code]
    ok = (age >= 0) & (age < seg_len[code])
    mask = np.zeros(n_rows, dtype=bool)
    mask[base[code[ok]] + age[ok]] = True
    return mask
