"""concepts.csv beside a Qlib or CSV directory, read as a user would: good files, and every kind of bad input in
strict mode (the error names the file and line) and lenient mode (the bad lines listed, the rest kept)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from warehouse.sources import SourceError, SyntheticSource, open_source
from warehouse.sources.qlib_bin import write_qlib_dir
from warehouse.sources.synthetic import SyntheticSpec

SMALL = SyntheticSpec(seed=3, instruments=6, start=dt.date(2020, 1, 1), end=dt.date(2020, 4, 30), core_size=3)


@pytest.fixture(scope="module")
def synth() -> SyntheticSource:
    return SyntheticSource(SMALL)


@pytest.fixture(params=["qlib", "csv"])
def data_dir(request: pytest.FixtureRequest, tmp_path: Path, synth: SyntheticSource) -> tuple[str, Path]:
    bars = synth.read_bars(None).bars
    if request.param == "qlib":
        return "qlib", write_qlib_dir(tmp_path / "q", bars, synth.calendar())
    root = tmp_path / "c"
    root.mkdir()
    for (inst,), frame in bars.group_by(["instrument"]):
        frame.drop("instrument").write_csv(root / f"{inst}.csv")
    return "csv", root


GOOD = (
    "Instrument, Concept ,weight\n"  # header names are case-insensitive; other columns are ignored
    "syn0001,bank,0.5\n"
    "SYN0001, insurance ,0.5\n"  # a second concept of the same instrument
    "\n"  # a blank line
    "syn0002,bank,1\n"
    "SYN0002,bank,1\n"  # a repeated row counts once
    "syn0003,Tech,1\n"
)


def test_reads_concepts_with_several_per_instrument(data_dir: tuple[str, Path]) -> None:
    kind, root = data_dir
    source = open_source(f"{kind}:{root}")
    assert source.concepts() is None  # no file: the source has none
    (root / "concepts.csv").write_text(GOOD)
    got = source.concepts()
    assert got is not None
    assert got.rows() == [("SYN0001", "bank"), ("SYN0001", "insurance"), ("SYN0002", "bank"), ("SYN0003", "Tech")]
    assert got.schema == {"instrument": pl.Utf8, "concept": pl.Utf8}
    assert source.skipped_concepts() == []
    # The file is the concepts, not an instrument's bars.
    assert "CONCEPTS" not in source.read_bars(None).bars["instrument"].to_list()
    assert "CONCEPTS" not in source.membership(None)["instrument"].to_list()


BAD_LINES = [
    ("instrument,concept\nSYN0001,bank\nSYN0002,\n", 3, "empty concept for instrument SYN0002"),
    ("instrument,concept\nSYN0001,bank\n  ,tech\n", 3, "empty instrument (concept 'tech')"),
    ("instrument,concept\nSYN0001,bank\n\nNOPE9,bank\n", 4, "instrument NOPE9 is not an instrument of the source"),
]


@pytest.mark.parametrize(("body", "line", "message"), BAD_LINES)
def test_bad_line_strict_names_file_and_line(data_dir: tuple[str, Path], body: str, line: int, message: str) -> None:
    kind, root = data_dir
    path = root / "concepts.csv"
    path.write_text(body)
    with pytest.raises(SourceError) as err:
        open_source(f"{kind}:{root}").concepts()
    assert str(err.value).startswith(f"{path}, line {line}: {message}")


@pytest.mark.parametrize(("body", "line", "message"), BAD_LINES)
def test_bad_line_lenient_is_listed_and_left_out(
    data_dir: tuple[str, Path], body: str, line: int, message: str
) -> None:
    kind, root = data_dir
    path = root / "concepts.csv"
    path.write_text(body)
    source = open_source(f"{kind}:{root}", on_bad_file="skip")
    got = source.concepts()
    assert got is not None and got.rows() == [("SYN0001", "bank")]
    assert [s.path for s in source.skipped_concepts()] == [f"{path}, line {line}"]
    assert message in source.skipped_concepts()[0].reason


def test_every_bad_line_is_listed_and_counted(data_dir: tuple[str, Path]) -> None:
    kind, root = data_dir
    path = root / "concepts.csv"
    path.write_text("instrument,concept\nX1,a\nSYN0001,a\nX2,b\n,c\n")
    with pytest.raises(SourceError, match=r"line 2: instrument X1 .* \(2 more bad line\(s\); PIPELINE_ON_BAD_FILE"):
        open_source(f"{kind}:{root}").concepts()
    source = open_source(f"{kind}:{root}", on_bad_file="skip")
    assert source.concepts().rows() == [("SYN0001", "a")]
    assert [s.path for s in source.skipped_concepts()] == [f"{path}, line {n}" for n in (2, 4, 5)]


BAD_FILES = [
    ("instrument,sector\nSYN0001,bank\n", "line 1: missing required column(s) concept"),
    ("code;concept\nSYN0001;bank\n", "line 1: missing required column(s) instrument"),
    ("instrument,concept\n", "header row but no data rows"),
    ("instrument,concept\n\n\n", "header row but no data rows"),
    ("", "cannot parse as CSV"),
]


@pytest.mark.parametrize(("body", "message"), BAD_FILES)
def test_bad_file_strict_and_lenient(data_dir: tuple[str, Path], body: str, message: str) -> None:
    kind, root = data_dir
    path = root / "concepts.csv"
    path.write_text(body)
    with pytest.raises(SourceError) as err:
        open_source(f"{kind}:{root}").concepts()
    assert str(err.value).startswith(f"{path}") and message in str(err.value)
    source = open_source(f"{kind}:{root}", on_bad_file="skip")
    assert source.concepts() is None  # nothing usable: the file is left out, listed
    assert [s.path for s in source.skipped_concepts()] == [str(path)]
    assert message in source.skipped_concepts()[0].reason


def test_lenient_file_with_only_bad_lines_gives_none(data_dir: tuple[str, Path]) -> None:
    kind, root = data_dir
    (root / "concepts.csv").write_text("instrument,concept\nX1,a\n")
    source = open_source(f"{kind}:{root}", on_bad_file="skip")
    assert source.concepts() is None
    assert len(source.skipped_concepts()) == 1
    (root / "concepts.csv").unlink()
    assert source.concepts() is None and source.skipped_concepts() == []  # each call reports its own read
