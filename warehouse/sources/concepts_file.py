"""``concepts.csv`` beside a source's data: which concepts (sectors, industries, themes) each instrument belongs to.

A CSV file with a header row naming (case-insensitive) the columns ``instrument`` and ``concept``; other columns
are ignored. One row per membership, so an instrument in several concepts has several rows; repeated rows count
once. Instrument codes are normalised as the source's bars are (upper-case, surrounding spaces dropped); concept
names keep their case, surrounding spaces dropped. Blank lines are ignored.

Bad input names the file and the line (the header is line 1): a file that is not CSV, a missing column, a header
and no rows, an empty instrument or concept, an instrument the source does not know. With a ``skipped`` list
(lenient mode) bad lines are left out and appended there; a file-level problem still raises.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import polars as pl

from warehouse.sources.base import SkippedFile, SourceError

CONCEPTS_FILE = "concepts.csv"
CONCEPTS_SCHEMA = {"instrument": pl.Utf8, "concept": pl.Utf8}
REQUIRED = ("instrument", "concept")


def read_concepts_file(
    path: Path, known: Collection[str], uri: str, skipped: list[SkippedFile] | None = None
) -> pl.DataFrame:
    """(instrument, concept) rows of ``path``, unique and sorted; ``known`` are the source's instruments
    (upper-case) and ``uri`` names the source in the unknown-instrument error."""
    try:
        frame = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except Exception as exc:  # polars raises several error types for malformed text
        raise SourceError(f"{path}: cannot parse as CSV ({str(exc).splitlines()[0]})") from None
    by_name = {c.strip().lower(): c for c in frame.columns}
    missing = [c for c in REQUIRED if c not in by_name]
    if missing:
        raise SourceError(
            f"{path}, line 1: missing required column(s) {', '.join(missing)}; header is {frame.columns!r} "
            "(a concepts file needs a header row naming the columns instrument and concept)"
        )
    # The header is line 1; polars keeps blank lines as all-null rows, so the index stays the line number
    # (blank lines are then dropped).
    rows = (
        frame.select(pl.col(by_name["instrument"]).alias("instrument"), pl.col(by_name["concept"]).alias("concept"))
        .with_row_index("line", offset=2)
        .with_columns(
            pl.col("instrument").str.strip_chars().str.to_uppercase().fill_null(""),
            pl.col("concept").str.strip_chars().fill_null(""),
        )
        .filter((pl.col("instrument") != "") | (pl.col("concept") != ""))
    )
    if rows.height == 0:
        raise SourceError(f"{path}: header row but no data rows (no instrument is in any concept)")
    problem = (
        pl.when(pl.col("instrument") == "")
        .then(pl.format("empty instrument (concept '{}')", pl.col("concept")))
        .when(pl.col("concept") == "")
        .then(pl.format("empty concept for instrument {}", pl.col("instrument")))
        .when(~pl.col("instrument").is_in(list(known)))
        .then(pl.format("instrument {} is not an instrument of the source {}", pl.col("instrument"), pl.lit(uri)))
    )
    checked = rows.with_columns(problem.alias("problem"))
    bad_lines = checked.filter(pl.col("problem").is_not_null()).select("line", "problem").rows()
    if bad_lines and skipped is None:
        line, reason = bad_lines[0]
        more = f" ({len(bad_lines) - 1} more bad line(s); PIPELINE_ON_BAD_FILE=skip leaves them out)"
        raise SourceError(f"{path}, line {line}: {reason}{more * (len(bad_lines) > 1)}")
    if skipped is not None:
        skipped.extend(SkippedFile(f"{path}, line {line}", reason) for line, reason in bad_lines)
    good = checked.filter(pl.col("problem").is_null()).select("instrument", "concept")
    return good.unique().sort("instrument", "concept")
