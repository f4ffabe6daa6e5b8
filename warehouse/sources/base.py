"""What every bar source provides, and the errors it raises."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

# Column order of the bars table; `change` and `vwap` may be null when a source lacks them.
BAR_COLUMNS = ["instrument", "date", "open", "high", "low", "close", "volume", "factor", "change", "vwap"]
PRICE_FIELDS = ["open", "high", "low", "close", "volume", "factor", "change", "vwap"]

BARS_SCHEMA = {
    "instrument": pl.Utf8,
    "date": pl.Date,
    **{f: pl.Float64 for f in PRICE_FIELDS},
}

MEMBERSHIP_SCHEMA = {"instrument": pl.Utf8, "start_date": pl.Date, "end_date": pl.Date}


class SourceError(ValueError):
    """Bad input in a source: the message names the file (and line or instrument) and the problem."""


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class BarsRead:
    """Bars read from a source for a date range, plus files skipped in lenient mode."""

    bars: pl.DataFrame
    skipped: list[SkippedFile] = field(default_factory=list)


class BarSource(ABC):
    """A market data source: a trading calendar, universes with membership ranges, and daily bars."""

    #: human-readable description, e.g. "qlib:/data/cn_data"
    uri: str
    #: "fail" raises on the first bad file; "skip" leaves bad files out and reports them
    on_bad_file: str = "fail"

    @abstractmethod
    def calendar(self) -> list[dt.date]:
        """Sorted trading dates."""

    @abstractmethod
    def universes(self) -> list[str]:
        """Names of the universes this source defines."""

    @abstractmethod
    def membership(self, universe: str | None) -> pl.DataFrame:
        """instrument, start_date, end_date (inclusive); ``None`` means every instrument of the source."""

    @abstractmethod
    def read_bars(
        self, instruments: list[str] | None, start: dt.date | None = None, end: dt.date | None = None
    ) -> BarsRead:
        """Bars of ``instruments`` (``None``: all) with dates in [start, end], in BAR_COLUMNS order."""

    def skipped_membership(self) -> list[SkippedFile]:
        """Membership-file lines left out in lenient mode (each named by file and line), in reading order."""
        return list(getattr(self, "_membership_skipped", {}).values())

    def _read_membership(self, path: Path) -> pl.DataFrame:
        """A Qlib-layout ``instruments/<universe>.txt``; strict mode raises on a bad line, lenient mode records it."""
        from warehouse.sources.qlib_bin import read_membership_file  # the format lives with Qlib's layout

        if self.on_bad_file != "skip":
            return read_membership_file(path)
        skipped: list[SkippedFile] = []
        members = read_membership_file(path, skipped)
        seen = self.__dict__.setdefault("_membership_skipped", {})
        for s in skipped:  # membership is read more than once per run; report each line once
            seen.setdefault(s.path, s)
        return members

    def concepts(self) -> pl.DataFrame | None:
        """(instrument, concept) memberships the source provides (several rows per instrument allowed), or
        ``None`` when it has none; in lenient mode also ``None`` when every line was bad (see
        ``skipped_concepts``). The directory sources read ``<dir>/concepts.csv`` (warehouse.sources.concepts_file)."""
        return None

    def concepts_origin(self) -> str:
        """Where ``concepts()`` comes from, for the stored source line: the directory sources' ``concepts.csv``."""
        return f"{self.uri}'s concepts"

    def skipped_concepts(self) -> list[SkippedFile]:
        """What the latest ``concepts()`` call left out in lenient mode: bad lines (file and line) or the file."""
        return list(getattr(self, "_concepts_skipped", []))

    def _read_concepts(self, path: Path, known: set[str]) -> pl.DataFrame | None:
        """``path`` (a concepts file) when it exists; strict mode raises on bad input, lenient mode records it."""
        from warehouse.sources.concepts_file import read_concepts_file

        self._concepts_skipped: list[SkippedFile] = []
        if not path.is_file():
            return None
        if self.on_bad_file != "skip":
            return read_concepts_file(path, known, self.uri)
        try:
            frame = read_concepts_file(path, known, self.uri, self._concepts_skipped)
        except SourceError as exc:  # a file-level problem: the whole file is left out
            self._concepts_skipped.append(SkippedFile(str(path), str(exc)))
            return None
        return frame if frame.height else None

    def default_benchmark(self) -> str | None:
        """The benchmark instrument the source itself proposes, if any."""
        return None

    def check_universe(self, universe: str | None) -> None:
        if universe is not None and universe not in self.universes():
            raise SourceError(
                f"unknown universe {universe!r} for source {self.uri}; "
                f"valid universes: {', '.join(sorted(self.universes())) or '(none)'}"
            )


def empty_bars() -> pl.DataFrame:
    return pl.DataFrame(schema=BARS_SCHEMA)


def finalize_bars(frame: pl.DataFrame) -> pl.DataFrame:
    """Canonical columns and types first, extra numeric fields after them, sorted by (instrument, date).

    NaN becomes null so that "no value" has one representation in the warehouse.
    """
    for col in PRICE_FIELDS:
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    extras = sorted(c for c in frame.columns if c not in BARS_SCHEMA)
    cols = [pl.col(c).cast(t) for c, t in BARS_SCHEMA.items()]
    cols += [pl.col(c).cast(pl.Float64) for c in extras]
    out = frame.select(cols)
    floats = [c for c in out.columns if c not in ("instrument", "date")]
    out = out.with_columns([pl.col(c).fill_nan(None) for c in floats])
    # Readers mostly deliver the order already; sorting copies every column.
    return out if _sorted_by_instrument_date(out) else out.sort(["instrument", "date"])


def _sorted_by_instrument_date(frame: pl.DataFrame) -> bool:
    """Whether the rows are in (instrument, date) order with no null key (two vectorised passes)."""
    if frame.height < 2:
        return True
    inst, date = pl.col("instrument"), pl.col("date")
    prev_inst, prev_date = inst.shift(1), date.shift(1)
    in_order = (inst > prev_inst) | ((inst == prev_inst) & (date >= prev_date))
    ok = frame.select(in_order.slice(1).all() & inst.is_not_null().all() & date.is_not_null().all())
    return bool(ok.item())


def check_bar_values(frame: pl.DataFrame, where: str) -> None:
    """Reject bars no market can produce: negative or zero prices, negative volume, duplicate dates.

    ``frame`` is in (instrument, date) order, as ``finalize_bars`` returns it: a duplicate is a row equal to
    the one before it in both keys (no hash table over all rows)."""
    inst, date = pl.col("instrument"), pl.col("date")
    dup = frame.filter((inst == inst.shift(1)) & (date == date.shift(1)))
    if dup.height:
        row = dup.row(0, named=True)
        raise SourceError(f"{where}: duplicate date {row['date']} for instrument {row['instrument']}")
    for col in ("open", "high", "low", "close"):
        bad = frame.filter(pl.col(col) <= 0)
        if bad.height:
            row = bad.row(0, named=True)
            raise SourceError(
                f"{where}: non-positive {col} {row[col]} for instrument {row['instrument']} on {row['date']}"
            )
    bad = frame.filter(pl.col("volume") < 0)
    if bad.height:
        row = bad.row(0, named=True)
        raise SourceError(
            f"{where}: negative volume {row['volume']} for instrument {row['instrument']} on {row['date']}"
        )
