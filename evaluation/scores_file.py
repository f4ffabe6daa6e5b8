"""Reading and checking score files: parquet with columns instrument, date, score (one row per key)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

SCORE_COLUMNS = ["instrument", "date", "score"]


class ScoresError(ValueError):
    """A score file or frame that cannot be used; the message names the file (or frame) and the problem."""


def _examples(values: Iterable[object], limit: int = 5) -> str:
    items = [str(v) for v in values]
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_scores_frame(frame: pl.DataFrame, where: str) -> pl.DataFrame:
    """Columns, types and unique keys; returns instrument (upper-case Utf8), date (Date), score (Float64)."""
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        raise ScoresError(f"{where}: missing columns {missing}; it has {frame.columns}")
    schema = frame.schema
    if not schema["score"].is_numeric():
        raise ScoresError(f"{where}: column 'score' must be numeric, found {schema['score']}")
    if schema["instrument"] not in (pl.Utf8, pl.Categorical) and not isinstance(schema["instrument"], pl.Enum):
        raise ScoresError(f"{where}: column 'instrument' must hold text, found {schema['instrument']}")
    if schema["date"] == pl.Datetime or isinstance(schema["date"], pl.Datetime):
        date = pl.col("date").dt.date()
    elif schema["date"] == pl.Date:
        date = pl.col("date")
    else:
        raise ScoresError(f"{where}: column 'date' must be a date, found {schema['date']}")
    out = frame.select(
        pl.col("instrument").cast(pl.Utf8).str.to_uppercase(),
        date.alias("date"),
        pl.col("score").cast(pl.Float64),
    )
    nulls = out.select(pl.col("instrument").null_count(), pl.col("date").null_count()).row(0)
    if any(nulls):
        raise ScoresError(f"{where}: {nulls[0]} rows without instrument and {nulls[1]} rows without date")
    dup = out.select("instrument", "date").is_duplicated()
    if dup.any():
        keys = out.filter(dup).unique(["instrument", "date"]).sort("date", "instrument").head(5)
        raise ScoresError(
            f"{where}: {int(dup.sum())} rows share an (instrument, date) key, e.g. "
            + _examples(f"{r['instrument']} {r['date']}" for r in keys.iter_rows(named=True))
        )
    return out.sort("date", "instrument")


def load_scores(path: str | Path) -> pl.DataFrame:
    """Read a parquet score file and check it (see ``check_scores_frame``)."""
    path = Path(path)
    if not path.is_file():
        raise ScoresError(f"score file {path} does not exist")
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several error types for a non-parquet file
        raise ScoresError(f"score file {path}: cannot read it as parquet ({exc})") from None
    return check_scores_frame(frame, f"score file {path}")


def validate_scores(
    scores: pl.DataFrame,
    known_instruments: Iterable[str],
    calendar: Sequence[dt.date],
    where: str = "scores",
) -> None:
    """Raise when scores name instruments the data does not have or dates outside the data's trading days."""
    known = {i.upper() for i in known_instruments}
    unknown = sorted(set(scores["instrument"].unique().to_list()) - known)
    if unknown:
        raise ScoresError(f"{where}: {len(unknown)} instruments not in the data: {_examples(unknown)}")
    days = set(calendar)
    bad_days = sorted(set(scores["date"].unique().to_list()) - days)
    if bad_days:
        lo, hi = (min(calendar), max(calendar)) if days else (None, None)
        raise ScoresError(
            f"{where}: {len(bad_days)} dates are not trading days of the data ({lo}..{hi}): {_examples(bad_days)}"
        )
