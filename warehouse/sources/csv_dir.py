"""A directory of CSV files, one per instrument (the file name without ``.csv`` is the instrument).

Accepted header names (case-insensitive; spaces, dashes and underscores are ignored):

=============  ==============================================================================
field          accepted names
=============  ==============================================================================
date           date, datetime, timestamp, time, trade_date, day
open           open
high           high
low            low
close          close
volume         volume, vol
adjusted close adj close, adjclose, adjusted close, adj_close (gives ``factor`` = adj close / close;
               prices are then adjusted: every price (open, high, low, close, vwap) × the same factor,
               and volume ÷ factor, as in Qlib's data; so equal raw prices stay equal once adjusted)
factor         factor, adj factor, adjustment factor (prices taken as already adjusted)
change         change, pct change, pct_chg (a fraction; derived from close when absent)
vwap           vwap, average price (optional)
=============  ==============================================================================

Without ``factor`` or adjusted close, the factor is 1. Other numeric columns are kept as extra fields. A file
with a header and no data rows is bad input (it carries nothing, most likely a failed download).
Optional ``instruments/<universe>.txt`` files in the same format as Qlib's define universes; the universe
``all`` is every CSV file's first-to-last date range. The calendar is the union of all files' dates, or
``calendars/day.txt`` when present. ``concepts.csv`` (instrument, concept; see ``warehouse.sources.concepts_file``)
is the instruments' concepts, not an instrument's bars.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

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
from warehouse.sources.qlib_bin import read_calendar

ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "datetime", "timestamp", "time", "tradedate", "day"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume", "vol"),
    "adjclose": ("adjclose", "adjustedclose"),
    "factor": ("factor", "adjfactor", "adjustmentfactor"),
    "change": ("change", "pctchange", "pctchg"),
    "vwap": ("vwap", "averageprice"),
}
REQUIRED = ("date", "open", "high", "low", "close", "volume")


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.strip().lower())


def _canonical_columns(header: list[str], path: Path) -> dict[str, str]:
    lookup = {alias: field for field, names in ALIASES.items() for alias in names}
    mapping: dict[str, str] = {}
    for col in header:
        field = lookup.get(_normalise(col))
        if field is None:
            continue
        if field in mapping.values():
            raise SourceError(f"{path}: more than one column gives {field!r} (column {col!r})")
        mapping[col] = field
    missing = [f for f in REQUIRED if f not in mapping.values()]
    if missing:
        raise SourceError(
            f"{path}: missing required column(s) {', '.join(missing)}; header is {header!r}. "
            f"Accepted names: " + "; ".join(f"{f}: {', '.join(ALIASES[f])}" for f in REQUIRED)
        )
    return mapping


def read_csv_bars(path: Path) -> pl.DataFrame:
    """One instrument's CSV as canonical bars (adjusted prices), with clear errors naming the file and line."""
    instrument = path.stem.upper()
    try:
        head = path.read_bytes()[:4096].decode("utf-8", errors="replace").lstrip("\ufeff")
    except OSError as exc:
        raise SourceError(f"{path}: cannot read file ({exc})") from None
    first_line = head.splitlines()[0] if head.strip() else ""
    if not first_line or first_line.lstrip().startswith(("{", "[", "<")) or "," not in first_line:
        raise SourceError(
            f"{path}: not a CSV file with a header row (first line: {first_line[:80]!r}); "
            "a data vendor's error message saved as .csv looks like this"
        )
    try:
        frame = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except Exception as exc:  # polars raises several error types for malformed text
        raise SourceError(f"{path}: cannot parse as CSV ({str(exc).splitlines()[0]})") from None
    mapping = _canonical_columns(frame.columns, path)
    extras = [c for c in frame.columns if c not in mapping]
    frame = frame.rename(mapping)
    frame = frame.with_row_index("_line", offset=2)  # header is line 1
    frame = frame.filter(~pl.all_horizontal(pl.exclude("_line").is_null()))  # blank lines carry nothing
    if frame.height == 0:
        raise SourceError(f"{path}: header row but no data rows (instrument {instrument}); an empty download?")

    parsed = frame.with_columns(pl.col("date").str.strip_chars().alias("_raw_date"))
    parsed = parsed.with_columns(
        pl.coalesce(
            pl.col("_raw_date").str.to_date("%Y-%m-%d", strict=False),
            pl.col("_raw_date").str.to_date("%Y/%m/%d", strict=False),
            pl.col("_raw_date").str.to_date("%Y%m%d", strict=False),
            pl.col("_raw_date").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
        ).alias("date")
    )
    bad = parsed.filter(pl.col("date").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise SourceError(f"{path}, line {row['_line']}: cannot parse date {row['_raw_date']!r}")
    numeric = [f for f in ALIASES if f != "date" and f in parsed.columns]
    for col in numeric + extras:
        as_float = pl.col(col).str.strip_chars().cast(pl.Float64, strict=False)
        bad = parsed.filter(pl.col(col).is_not_null() & (pl.col(col).str.strip_chars() != "") & as_float.is_null())
        if bad.height and col in numeric:
            row = bad.row(0, named=True)
            raise SourceError(f"{path}, line {row['_line']}: column {col!r} has non-numeric value {row[col]!r}")
        if bad.height:  # a text extra column (e.g. a name) is not a bar field
            parsed = parsed.drop(col)
            continue
        parsed = parsed.with_columns(as_float.alias(col))
    extras = [c for c in extras if c in parsed.columns]
    dup = parsed.group_by("date").agg(pl.col("_line").sort()).filter(pl.col("_line").list.len() > 1)
    if dup.height:
        row = dup.sort("date").row(0, named=True)
        raise SourceError(
            f"{path}: duplicate date {row['date']} for instrument {instrument} (lines {row['_line'][:3]})"
        )
    parsed = parsed.sort("date")
    if "adjclose" in parsed.columns and "factor" not in parsed.columns:
        # Every price is raw price × the same factor (close too, rather than taking adj close as is): equal raw
        # prices (close == high on a limit-up day) then give bit-identical adjusted prices, in float64 and
        # after any float32 cast, so `low <= close <= high` holds exactly; close × factor and adj close differ
        # by at most one rounding.
        parsed = parsed.with_columns((pl.col("adjclose") / pl.col("close")).alias("factor"))
        factor = pl.col("factor")
        prices = ["open", "high", "low", "close"] + (["vwap"] if "vwap" in parsed.columns else [])
        parsed = parsed.with_columns(
            *[(pl.col(c) * factor).alias(c) for c in prices],
            (pl.col("volume") / factor).alias("volume"),
        )
    if "factor" not in parsed.columns:
        parsed = parsed.with_columns(pl.lit(1.0).alias("factor"))
    if "change" not in parsed.columns:
        parsed = parsed.with_columns((pl.col("close") / pl.col("close").shift(1) - 1).alias("change"))
    keep = ["date", "open", "high", "low", "close", "volume", "factor", "change"]
    keep += [c for c in ("vwap",) if c in parsed.columns] + extras
    out = parsed.select(keep).with_columns(pl.lit(instrument).alias("instrument"))
    bars = finalize_bars(out)
    check_bar_values(bars, str(path))
    return bars


class CsvDirSource(BarSource):
    def __init__(self, root: str | Path, on_bad_file: str = "fail") -> None:
        self.root = Path(root).expanduser()
        self.uri = f"csv:{self.root}"
        self.on_bad_file = on_bad_file
        if not self.root.is_dir():
            raise SourceError(f"CSV directory {self.root} does not exist")
        self._files = {p.stem.upper(): p for p in sorted(self.root.glob("*.csv")) if p.name != CONCEPTS_FILE}
        if not self._files:
            raise SourceError(f"CSV directory {self.root} has no .csv files")
        self._cache: dict[str, pl.DataFrame] = {}
        self._skipped: dict[str, SkippedFile] = {}

    def _load(self, inst: str) -> pl.DataFrame | None:
        if inst in self._cache:
            return self._cache[inst]
        if inst in self._skipped:
            return None
        try:
            bars = read_csv_bars(self._files[inst])
        except SourceError as exc:
            if self.on_bad_file != "skip":
                raise
            self._skipped[inst] = SkippedFile(str(self._files[inst]), str(exc))
            return None
        self._cache[inst] = bars
        return bars

    def concepts_origin(self) -> str:
        return str(self.root / CONCEPTS_FILE)

    def concepts(self) -> pl.DataFrame | None:
        return self._read_concepts(self.root / CONCEPTS_FILE, set(self._files))

    def calendar(self) -> list[dt.date]:
        cal_file = self.root / "calendars" / "day.txt"
        if cal_file.is_file():
            return read_calendar(self.root)
        frames = [b for i in self._files if (b := self._load(i)) is not None]
        if not frames:
            raise SourceError(f"CSV directory {self.root}: no readable file to derive a calendar from")
        return pl.concat([f.select("date") for f in frames])["date"].unique().sort().to_list()

    def universes(self) -> list[str]:
        folder = self.root / "instruments"
        names = {p.stem for p in folder.glob("*.txt")} if folder.is_dir() else set()
        return sorted(names | {"all"})

    def membership(self, universe: str | None) -> pl.DataFrame:
        self.check_universe(universe)
        path = self.root / "instruments" / f"{universe}.txt"
        if universe is not None and path.is_file():
            return self._read_membership(path)
        rows = []
        for inst in self._files:
            bars = self._load(inst)
            if bars is not None and bars.height:
                rows.append((inst, bars["date"].min(), bars["date"].max()))
        return pl.DataFrame(rows, schema=MEMBERSHIP_SCHEMA, orient="row")

    def read_bars(
        self, instruments: list[str] | None, start: dt.date | None = None, end: dt.date | None = None
    ) -> BarsRead:
        names = sorted(self._files) if instruments is None else sorted({i.upper() for i in instruments})
        frames = [b for i in names if i in self._files and (b := self._load(i)) is not None]
        # Every skipped file is reported: a bad file may have dropped its instrument from the universe too.
        skipped = [self._skipped[i] for i in sorted(self._skipped)]
        if not frames:
            return BarsRead(empty_bars(), skipped)
        bars = pl.concat(frames, how="diagonal_relaxed")
        if start is not None:
            bars = bars.filter(pl.col("date") >= start)
        if end is not None:
            bars = bars.filter(pl.col("date") <= end)
        return BarsRead(finalize_bars(bars), skipped)
