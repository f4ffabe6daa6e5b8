"""Score-file checks: a file with the wrong columns, types or keys is refused with the file and problem named."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from evaluation.scores_file import ScoresError, load_scores, validate_scores

D1, D2 = dt.date(2024, 1, 2), dt.date(2024, 1, 3)


def write(tmp_path: Path, frame: pl.DataFrame) -> Path:
    path = tmp_path / "scores.parquet"
    frame.write_parquet(path)
    return path


def test_load_scores_normalises_a_good_file(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "instrument": ["sh600000", "SZ000001"],
            "date": [dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 2)],
            "score": [1, 2],
        }
    )
    scores = load_scores(write(tmp_path, frame))
    assert scores.schema == {"instrument": pl.Utf8, "date": pl.Date, "score": pl.Float64}
    assert scores.rows() == [("SZ000001", D1, 2.0), ("SH600000", D2, 1.0)]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"instrument": ["A"], "date": [D1]}), r"missing columns \['score'\]"),
        (pl.DataFrame({"instrument": ["A"], "date": [D1], "score": ["x"]}), "'score' must be numeric"),
        (pl.DataFrame({"instrument": ["A"], "date": ["2024-01-02"], "score": [1.0]}), "'date' must be a date"),
        (
            pl.DataFrame({"instrument": ["A", "A", "B"], "date": [D1, D1, D1], "score": [1.0, 2.0, 3.0]}),
            "2 rows share an \\(instrument, date\\) key, e.g. A 2024-01-02",
        ),
    ],
)
def test_load_scores_errors_name_file_and_problem(tmp_path: Path, frame: pl.DataFrame, message: str) -> None:
    path = write(tmp_path, frame)
    with pytest.raises(ScoresError, match=f"score file {path}: .*{message}"):
        load_scores(path)


def test_load_scores_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ScoresError, match=re.escape(f"score file {tmp_path / 'nope.parquet'} does not exist")):
        load_scores(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ScoresError, match="cannot read it as parquet"):
        load_scores(bad)


def test_validate_scores_names_offending_values() -> None:
    scores = pl.DataFrame({"instrument": ["A", "ZZ", "YY"], "date": [D1, D1, dt.date(2030, 1, 1)], "score": [1.0] * 3})
    with pytest.raises(ScoresError, match="2 instruments not in the data: YY, ZZ"):
        validate_scores(scores, ["A"], [D1, D2])
    with pytest.raises(
        ScoresError, match=r"1 dates are not trading days of the data \(2024-01-02..2024-01-03\): 2030-01-01"
    ):
        validate_scores(scores, ["A", "YY", "ZZ"], [D1, D2])
    validate_scores(scores.head(1), ["a"], [D1, D2])
