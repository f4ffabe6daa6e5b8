"""Qlib's binary data directory: ``calendars/day.txt``, ``instruments/<universe>.txt``,
``features/<instrument>/<field>.day.bin`` (little-endian float32; the first value is the calendar index of the
first row, then one value per trading day), and optionally ``concepts.csv`` (instrument, concept; see
``warehouse.sources.concepts_file``) naming each instrument's concepts for HIST.

This is also the layout of a user's ``~/.qlib/qlib_data/cn_data``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import polars as pl

from warehouse.sources.base import (
    MEMBERSHIP_SCHEMA,
    BarSource,
    BarsRead,
    SkippedFile,
    SourceError,
    check_bar_values,
    empty_bars,
    finalize_bars,
)
from warehouse.sources.concepts_file import CONCEPTS_FILE

FREQ_SUFFIX = ".day.bin"


def read_calendar(root: Path) -> list[dt.date]:
    path = root / "calendars" / "day.txt"
    if not path.is_file():
        raise SourceError(f"Qlib directory {root} has no calendar file {path}")
    dates = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        try:
            dates.append(dt.date.fromisoformat(text[:10]))
        except ValueError:
            raise SourceError(f"{path}, line {lineno}: cannot parse date {text!r}") from None
    if not dates:
        raise SourceError(f"calendar file {path} is empty")
    if any(b <= a for a, b in zip(dates, dates[1:], strict=False)):
        raise SourceError(f"calendar file {path} is not strictly increasing")
    return dates


def _membership_line(path: Path, lineno: int, line: str) -> tuple[str, dt.date, dt.date]:
    parts = line.split()
    if len(parts) < 3:
        raise SourceError(f"{path}, line {lineno}: expected 'instrument start end', got {line!r}")
    try:
        start, end = dt.date.fromisoformat(parts[1][:10]), dt.date.fromisoformat(parts[2][:10])
    except ValueError:
        raise SourceError(f"{path}, line {lineno}: cannot parse dates in {line!r}") from None
    if end < start:  # parses, but contradicts itself: a range that holds no day
        raise SourceError(
            f"{path}, line {lineno}: instrument {parts[0].upper()} ends ({end}) before it starts ({start})"
        )
    return parts[0].upper(), start, end


def read_membership_file(path: Path, skipped: list[SkippedFile] | None = None) -> pl.DataFrame:
    """``instrument<TAB>start<TAB>end`` lines; an instrument may appear on several lines.

    A bad line raises, naming the file and line; with ``skipped`` (lenient mode) it is left out and appended there.
    """
    rows: list[tuple[str, dt.date, dt.date]] = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.split():
            continue
        try:
            rows.append(_membership_line(path, lineno, line))
        except SourceError as exc:
            if skipped is None:
                raise
            skipped.append(SkippedFile(f"{path}, line {lineno}", str(exc)))
    return pl.DataFrame(rows, schema=MEMBERSHIP_SCHEMA, orient="row").sort(["instrument", "start_date"])


def read_field_header(path: Path, n_calendar: int) -> tuple[int, int]:
    """(calendar index of the first value, number of values) of a field file, from its size and its first
    four bytes; checks the length against the calendar."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(4)
    if size % 4:
        raise SourceError(f"{path}: size {size} bytes is not a whole number of float32 values")
    if size == 0:
        raise SourceError(f"{path}: empty file (no start index)")
    start = np.frombuffer(head, dtype="<f4")[0]
    if not np.isfinite(start) or start < 0 or start != int(start):
        raise SourceError(f"{path}: invalid start index {start!r}")
    start, count = int(start), size // 4 - 1
    if count == 0:  # a start index and no series: parses, carries nothing
        raise SourceError(f"{path}: start index {start} but no values (an empty series)")
    if start + count > n_calendar:
        raise SourceError(
            f"{path}: start index {start} plus {count} values runs past the calendar's "
            f"{n_calendar} days (length disagrees with the start index)"
        )
    return start, count


def _read_values(path: Path, skip: int, count: int) -> np.ndarray:
    """``count`` float32 values of a field file from its ``skip``-th value on."""
    values = np.fromfile(path, dtype="<f4", count=count, offset=4 * (1 + skip))
    if values.size != count:
        raise SourceError(f"{path}: changed while being read ({values.size} of {count} values)")
    return values


class QlibBinSource(BarSource):
    def __init__(self, root: str | Path, on_bad_file: str = "fail") -> None:
        self.root = Path(root).expanduser()
        self.uri = f"qlib:{self.root}"
        self.on_bad_file = on_bad_file
        if not self.root.is_dir():
            raise SourceError(f"Qlib directory {self.root} does not exist")
        self._calendar = read_calendar(self.root)
        features = self.root / "features"
        if not features.is_dir():
            raise SourceError(f"Qlib directory {self.root} has no features/ folder")
        # Instrument folders may be lower- or upper-case; the canonical name is upper-case.
        self._dirs = {p.name.upper(): p for p in sorted(features.iterdir()) if p.is_dir()}

    def calendar(self) -> list[dt.date]:
        return list(self._calendar)

    def universes(self) -> list[str]:
        folder = self.root / "instruments"
        return sorted(p.stem for p in folder.glob("*.txt")) if folder.is_dir() else []

    def membership(self, universe: str | None) -> pl.DataFrame:
        if universe is None:
            if "all" in self.universes():
                return self._read_membership(self.root / "instruments" / "all.txt")
            return self._spans_from_files()
        self.check_universe(universe)
        return self._read_membership(self.root / "instruments" / f"{universe}.txt")

    def instruments_with_data(self) -> list[str]:
        return sorted(self._dirs)

    def concepts_origin(self) -> str:
        return str(self.root / CONCEPTS_FILE)

    def concepts(self) -> pl.DataFrame | None:
        # An instrument is known when it has a features/ folder (any case), as for the bars.
        return self._read_concepts(self.root / CONCEPTS_FILE, set(self._dirs))

    def _spans_from_files(self) -> pl.DataFrame:
        rows = []
        n = len(self._calendar)
        for inst, folder in self._dirs.items():
            close = folder / f"close{FREQ_SUFFIX}"
            if not close.is_file():
                continue
            try:
                start, count = read_field_header(close, n)
            except SourceError:
                if self.on_bad_file != "skip":
                    raise
                continue  # read_bars reports the bad file when it skips the instrument
            rows.append((inst, self._calendar[start], self._calendar[start + count - 1]))
        return pl.DataFrame(rows, schema=MEMBERSHIP_SCHEMA, orient="row")

    def read_bars(
        self, instruments: list[str] | None, start: dt.date | None = None, end: dt.date | None = None
    ) -> BarsRead:
        cal = np.array(self._calendar, dtype="datetime64[D]")
        n_cal = cal.size
        lo = 0 if start is None else int(np.searchsorted(cal, np.datetime64(start, "D"), "left"))
        hi = n_cal if end is None else int(np.searchsorted(cal, np.datetime64(end, "D"), "right"))
        names = sorted(self._dirs) if instruments is None else sorted({i.upper() for i in instruments})
        skipped: list[SkippedFile] = []
        fields_seen: set[str] = set()
        # (instrument, first, last, field -> (path, start, count)): the headers first, so that each file's
        # values go straight into their final column below, one file at a time
        per_inst: list[tuple[str, int, int, dict[str, tuple[Path, int, int]]]] = []
        for inst in names:
            folder = self._dirs.get(inst)
            if folder is None:
                continue  # members without files are reported by the coverage check, not here
            try:
                fields = {
                    f.name[: -len(FREQ_SUFFIX)]: (f, *read_field_header(f, n_cal))
                    for f in sorted(folder.glob(f"*{FREQ_SUFFIX}"))
                }
            except SourceError as exc:
                if self.on_bad_file != "skip":
                    raise
                skipped.append(SkippedFile(str(exc).split(":")[0], str(exc)))
                continue
            if not fields:
                continue
            first = min(s for _, s, _ in fields.values())
            last = max(s + n for _, s, n in fields.values())
            first, last = max(first, lo), min(last, hi)
            if last <= first:
                continue
            fields_seen.update(fields)
            per_inst.append((inst, first, last, fields))
        if not per_inst:
            return BarsRead(empty_bars(), skipped)
        lengths = np.array([last - first for _, first, last, _ in per_inst])
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        idx = np.concatenate([np.arange(first, last) for _, first, last, _ in per_inst])
        # Each file is read into its place in its field's float64 column (float32 widened exactly, so features
        # see the numbers Qlib reads): no per-instrument arrays held until all are read, which would leave the
        # process holding several times the bars' size once they are freed.
        columns: dict[str, np.ndarray] = {}
        for name in sorted(fields_seen):
            col = np.full(int(offsets[-1]), np.nan)
            for (_, first, last, fields), at in zip(per_inst, offsets[:-1], strict=True):
                if name in fields:
                    path, s, n = fields[name]
                    a, b = max(s, first), min(s + n, last)
                    if b > a:
                        col[at + a - first : at + b - first] = _read_values(path, a - s, b - a)
            columns[name] = col
        present = [c for c in ("open", "high", "low", "close", "volume") if c in columns]
        keep = np.logical_or.reduce([~np.isnan(columns[c]) for c in present]) if present else None
        # Instrument names repeated by index gather (no per-row Python objects).
        rows = np.repeat(np.arange(len(per_inst)), lengths)
        names_col = pl.Series("instrument", [inst for inst, *_ in per_inst])
        if keep is not None and not keep.all():
            rows, idx = rows[keep], idx[keep]
            for name in columns:  # one column at a time: the unfiltered ones go as their copies arrive
                columns[name] = columns[name][keep]
        frame = pl.DataFrame({"instrument": names_col.gather(rows), "date": cal[idx], **columns})
        del columns
        bars = finalize_bars(frame)
        try:
            check_bar_values(bars, f"Qlib directory {self.root}")
        except SourceError:
            if self.on_bad_file != "skip":
                raise
            bars, more = _drop_bad_instruments(bars, self.root)
            skipped.extend(more)
        return BarsRead(bars, skipped)


def _drop_bad_instruments(bars: pl.DataFrame, root: Path) -> tuple[pl.DataFrame, list[SkippedFile]]:
    bad = (
        bars.filter(
            pl.any_horizontal([pl.col(c) <= 0 for c in ("open", "high", "low", "close")]) | (pl.col("volume") < 0)
        )["instrument"]
        .unique()
        .sort()
        .to_list()
    )
    skipped = [SkippedFile(str(root / "features" / i.lower()), "non-positive price or negative volume") for i in bad]
    return bars.filter(~pl.col("instrument").is_in(bad)), skipped


def write_qlib_dir(
    root: str | Path,
    bars: pl.DataFrame,
    calendar: list[dt.date],
    universes: dict[str, pl.DataFrame] | None = None,
    fields: list[str] | None = None,
) -> Path:
    """Write bars in Qlib's binary layout (used by tests and to hand synthetic data to Qlib itself).

    Each instrument's file covers every calendar day from its first to its last bar, NaN where it has none.
    """
    root = Path(root)
    (root / "calendars").mkdir(parents=True, exist_ok=True)
    (root / "instruments").mkdir(parents=True, exist_ok=True)
    (root / "calendars" / "day.txt").write_text("".join(f"{d.isoformat()}\n" for d in calendar))
    cal = np.array(calendar, dtype="datetime64[D]")
    fields = fields or [
        c for c in bars.columns if c not in ("instrument", "date") and bars[c].null_count() < bars.height
    ]
    spans = []
    for (inst,), group in bars.sort("date").group_by(["instrument"], maintain_order=True):
        pos = np.searchsorted(cal, group["date"].to_numpy().astype("datetime64[D]"))
        first, last = int(pos.min()), int(pos.max())
        folder = root / "features" / inst.lower()
        folder.mkdir(parents=True, exist_ok=True)
        for name in fields:
            col = np.full(last - first + 1, np.nan, dtype="<f4")
            col[pos - first] = group[name].fill_null(np.nan).to_numpy().astype("<f4")
            np.concatenate([[np.float32(first)], col]).astype("<f4").tofile(folder / f"{name}{FREQ_SUFFIX}")
        spans.append(f"{inst}\t{calendar[first]}\t{calendar[last]}\n")
    (root / "instruments" / "all.txt").write_text("".join(spans))
    for name, members in (universes or {}).items():
        lines = [
            f"{r['instrument']}\t{r['start_date']}\t{r['end_date']}\n"
            for r in members.sort(["instrument", "start_date"]).iter_rows(named=True)
        ]
        (root / "instruments" / f"{name}.txt").write_text("".join(lines))
    return root


def read_qlib_bars(
    root: str | Path,
    instruments: list[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pl.DataFrame:
    """Convenience for scripts and benchmarks: all bars of a Qlib directory as one frame."""
    return QlibBinSource(root).read_bars(instruments, start, end).bars
