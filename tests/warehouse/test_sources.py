"""Each bar source, and each kind of bad input, read as a user would."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from warehouse.sources import CsvDirSource, QlibBinSource, SourceError, SyntheticSource, open_source
from warehouse.sources.base import BAR_COLUMNS, check_bar_values, finalize_bars
from warehouse.sources.qlib_bin import write_qlib_dir
from warehouse.sources.synthetic import BENCHMARK, SyntheticSpec

SMALL = SyntheticSpec(seed=3, instruments=12, start=dt.date(2020, 1, 1), end=dt.date(2020, 12, 31), core_size=6)


@pytest.fixture(scope="module")
def synth() -> SyntheticSource:
    return SyntheticSource(SMALL)


def test_synthetic_is_deterministic_and_realistic(synth: SyntheticSource) -> None:
    again = SyntheticSource(SMALL).read_bars(None).bars
    bars = synth.read_bars(None).bars
    assert bars.equals(again)
    assert bars.columns == BAR_COLUMNS
    other = SyntheticSource(SyntheticSpec(**{**SMALL.__dict__, "seed": 4})).read_bars(None).bars
    assert not bars["close"].equals(other["close"])
    cal = synth.calendar()
    assert all(d.weekday() < 5 for d in cal) and dt.date(2020, 1, 1) not in cal
    stocks = bars.filter(pl.col("instrument") != BENCHMARK)
    per_inst = stocks.group_by("instrument").len()
    assert per_inst["len"].min() < len(cal)  # suspensions / listings leave days without bars
    assert stocks.filter(pl.col("change").abs() >= 0.095).height > 0  # limit days exist
    assert stocks["factor"].max() > 1.0  # splits
    assert (stocks["low"] <= stocks["open"]).all() and (stocks["close"] <= stocks["high"]).all()
    core = synth.membership("core")
    assert core["instrument"].n_unique() > SMALL.core_size  # membership changes over time
    assert BENCHMARK in bars["instrument"].to_list() and synth.default_benchmark() == BENCHMARK


def test_qlib_round_trip_with_upper_case_folders(tmp_path: Path, synth: SyntheticSource) -> None:
    bars = synth.read_bars(None).bars
    # days without a bar inside a span are NaN in the files and are no rows when read back
    gap = (pl.col("instrument") == "SYN0002") & pl.col("date").is_between(dt.date(2020, 5, 4), dt.date(2020, 5, 8))
    assert bars.filter(gap).height > 0
    bars = bars.filter(~gap)
    root = write_qlib_dir(tmp_path / "q", bars, synth.calendar(), {"core": synth.membership("core")})
    # Upper-case instrument folders are accepted too.
    folder = next((root / "features").iterdir())
    folder.rename(folder.with_name(folder.name.upper()))
    src = QlibBinSource(root)
    back = src.read_bars(None).bars
    f32 = [pl.col(c).cast(pl.Float32) for c in ("open", "high", "low", "close", "volume", "factor", "vwap")]
    assert back.select("instrument", "date", *f32).equals(bars.select("instrument", "date", *f32))
    assert set(src.universes()) == {"all", "core"}
    assert src.membership("core").equals(synth.membership("core"))
    window = src.read_bars(["syn0001"], dt.date(2020, 3, 1), dt.date(2020, 3, 31)).bars
    assert window["instrument"].unique().to_list() == ["SYN0001"]
    assert window["date"].min() >= dt.date(2020, 3, 1) and window["date"].max() <= dt.date(2020, 3, 31)


def test_qlib_real_data(qlib_cn_dir: Path) -> None:
    src = open_source(f"qlib:{qlib_cn_dir}")
    cal = src.calendar()
    assert cal[0] == dt.date(2010, 1, 4) and len(cal) == 3966
    members = src.membership("csi300")
    assert members["instrument"].n_unique() == 789
    bars = src.read_bars(["SH600000", "SH000300"], dt.date(2020, 1, 2), dt.date(2020, 1, 10)).bars
    assert bars.filter(pl.col("instrument") == "SH600000").height == 7
    assert bars["vwap"].null_count() == bars.height  # the real data has no vwap field


def _write_csv(path: Path, frame: pl.DataFrame) -> None:
    frame.write_csv(path)


def test_csv_source_aliases_and_adjusted_close(tmp_path: Path) -> None:
    raw = pl.DataFrame(
        {
            "Trade_Date": ["2021-01-04", "2021-01-05", "2021-01-06"],
            "Open": [10.0, 10.5, 5.2],
            "High": [10.6, 10.9, 5.4],
            "Low": [9.9, 10.2, 5.0],
            "Close": [10.5, 10.8, 5.3],
            "Vol": [1000.0, 1200.0, 2600.0],
            "Adj Close": [21.0, 21.6, 21.2],
        }
    )
    _write_csv(tmp_path / "aaa.csv", raw)
    _write_csv(
        tmp_path / "BBB.csv",
        pl.DataFrame(
            {
                "timestamp": ["2021/01/04", "2021/01/06"],
                "open": [1.0, 1.1],
                "high": [1.2, 1.2],
                "low": [0.9, 1.0],
                "close": [1.1, 1.15],
                "volume": [5.0, 6.0],
                "vwap": [1.05, 1.1],
            }
        ),
    )
    src = open_source(f"csv:{tmp_path}")
    assert src.calendar() == [dt.date(2021, 1, 4), dt.date(2021, 1, 5), dt.date(2021, 1, 6)]
    bars = src.read_bars(None).bars
    a = bars.filter(pl.col("instrument") == "AAA")
    assert a["close"].to_list() == pytest.approx([21.0, 21.6, 21.2], rel=1e-15)  # close × factor: adj close
    assert a["factor"].to_list() == pytest.approx([2.0, 2.0, 4.0])
    assert a["open"].to_list() == pytest.approx([20.0, 21.0, 20.8])
    assert a["volume"].to_list() == pytest.approx([500.0, 600.0, 650.0])
    assert a["change"][1] == pytest.approx(21.6 / 21.0 - 1)
    b = bars.filter(pl.col("instrument") == "BBB")
    assert b["factor"].to_list() == [1.0, 1.0] and b["vwap"].to_list() == [1.05, 1.1]
    assert src.membership(None).height == 2


def test_csv_adjustment_keeps_equal_raw_prices_equal(tmp_path: Path) -> None:
    # Raw close == high (a limit-up close) and close == low, factors that are not powers of two: with
    # close = adj close and high = high × (adj close / close), the two differ in the last bit.
    rng = np.random.default_rng(0)
    n = 400
    close = np.round(rng.uniform(3, 90, n), 2)
    high = np.where(np.arange(n) % 2 == 0, close, np.round(close * 1.03, 2))
    low = np.where(np.arange(n) % 2 == 1, close, np.round(close * 0.97, 2))
    adj = np.round(close * rng.uniform(0.3, 3.7, n), 4)
    dates = [(dt.date(2001, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(n)]
    raw = pl.DataFrame({"timestamp": dates, "open": close, "high": high, "low": low, "close": close})
    raw = raw.with_columns(adjusted_close=pl.Series(adj), volume=pl.lit(1000.0), dividend_amount=pl.lit(0.0))
    _write_csv(tmp_path / "X.csv", raw)
    bars = open_source(f"csv:{tmp_path}").read_bars(None).bars
    evens, odds = bars.filter(pl.int_range(pl.len()) % 2 == 0), bars.filter(pl.int_range(pl.len()) % 2 == 1)
    assert (evens["close"] == evens["high"]).all() and (odds["close"] == odds["low"]).all()
    assert (bars["open"] == bars["close"]).all()
    as32 = bars.select(pl.col("open", "high", "low", "close").cast(pl.Float32))
    assert (as32["close"] >= as32["low"]).all() and (as32["close"] <= as32["high"]).all()
    assert bars["close"].to_numpy() == pytest.approx(adj, rel=1e-15)
    assert bars["factor"].to_numpy() == pytest.approx(adj / close, rel=1e-15)
    assert bars["volume"].to_numpy() == pytest.approx(1000.0 * close / adj, rel=1e-12)


GOOD_CSV = "date,open,high,low,close,volume\n2021-01-04,1,1.2,0.9,1.1,100\n2021-01-05,1.1,1.3,1.0,1.2,120\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (json.dumps({"error": "API rate limit exceeded", "code": 429}), "not a CSV file"),
        ("date,open,high,low\n2021-01-04,1,1.2,0.9\n", "missing required column(s) close, volume"),
        (
            "date,open,high,low,close,volume\n2021-01-04,1,1.2,0.9,1.1,100\nnot-a-day,1,1.2,0.9,1.1,100\n",
            "line 3: cannot parse date 'not-a-day'",
        ),
        (GOOD_CSV + "2021-01-05,1.1,1.3,1.0,1.2,120\n", "duplicate date 2021-01-05"),
        ("date,open,high,low,close,volume\n2021-01-04,1,1.2,0.9,-1.1,100\n", "non-positive close"),
        ("date,open,high,low,close,volume\n2021-01-04,1,1.2,0.9,abc,100\n", "non-numeric value 'abc'"),
        ("date,open,high,low,close,volume\n", "header row but no data rows (instrument BAD)"),
        ("Date,Open,High,Low,Close,Adj Close,Volume\r\n\r\n", "header row but no data rows"),
    ],
)
def test_csv_bad_files_name_file_and_problem(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "GOOD.csv").write_text(GOOD_CSV)
    (tmp_path / "BAD.csv").write_text(body)
    with pytest.raises(SourceError) as err:
        open_source(f"csv:{tmp_path}").read_bars(None)
    assert "BAD.csv" in str(err.value) and message in str(err.value)
    # Lenient mode leaves the bad file out and says so.
    read = open_source(f"csv:{tmp_path}", on_bad_file="skip").read_bars(None)
    assert read.bars["instrument"].unique().to_list() == ["GOOD"]
    assert [Path(s.path).name for s in read.skipped] == ["BAD.csv"]
    assert message in read.skipped[0].reason


def test_qlib_directory_errors(tmp_path: Path, synth: SyntheticSource) -> None:
    root = write_qlib_dir(tmp_path / "q", synth.read_bars(None).bars, synth.calendar())
    (root / "calendars" / "day.txt").rename(root / "calendars" / "moved.txt")
    with pytest.raises(SourceError, match=r"has no calendar file .*calendars/day.txt"):
        QlibBinSource(root)
    (root / "calendars" / "moved.txt").rename(root / "calendars" / "day.txt")

    close = root / "features" / "syn0002" / "close.day.bin"
    data = np.fromfile(close, "<f4")
    data[0] = len(synth.calendar()) - 5  # start index too late for the number of values
    data.tofile(close)
    with pytest.raises(SourceError, match=r"syn0002/close.day.bin: start index .*length disagrees"):
        QlibBinSource(root).read_bars(None)
    read = QlibBinSource(root, on_bad_file="skip").read_bars(None)
    assert "SYN0002" not in read.bars["instrument"].to_list()
    assert "syn0002/close.day.bin" in read.skipped[0].reason

    with pytest.raises(SourceError, match=r"unknown universe 'csi300'.*valid universes: all"):
        QlibBinSource(root).membership("csi300")


def test_qlib_bin_with_no_values_is_bad_input(tmp_path: Path, synth: SyntheticSource) -> None:
    root = write_qlib_dir(tmp_path / "q", synth.read_bars(None).bars, synth.calendar())
    np.array([3.0], dtype="<f4").tofile(root / "features" / "syn0004" / "volume.day.bin")  # start index only
    with pytest.raises(SourceError, match=r"syn0004/volume.day.bin: start index 3 but no values"):
        QlibBinSource(root).read_bars(None)
    read = QlibBinSource(root, on_bad_file="skip").read_bars(None)
    assert "SYN0004" not in read.bars["instrument"].to_list()
    assert len(read.skipped) == 1 and "no values" in read.skipped[0].reason


@pytest.mark.parametrize("kind", ["qlib", "csv"])
def test_membership_line_ending_before_it_starts(tmp_path: Path, synth: SyntheticSource, kind: str) -> None:
    bars = synth.read_bars(None).bars
    if kind == "qlib":
        root = write_qlib_dir(tmp_path / "q", bars, synth.calendar())
    else:
        root = tmp_path / "c"
        root.mkdir()
        for (inst,), frame in bars.group_by(["instrument"]):
            frame.drop("instrument").write_csv(root / f"{inst}.csv")
    (root / "instruments").mkdir(exist_ok=True)
    universe = root / "instruments" / "mine.txt"
    universe.write_text(
        "SYN0001\t2020-01-02\t2020-06-30\n\nSYN0002\t2020-09-01\t2020-03-01\nSYN0003\t2020-02-03\t2020-12-31\n"
    )
    with pytest.raises(SourceError) as err:
        open_source(f"{kind}:{root}").membership("mine")
    assert "mine.txt, line 3: instrument SYN0002 ends (2020-03-01) before it starts (2020-09-01)" in str(err.value)
    lenient = open_source(f"{kind}:{root}", on_bad_file="skip")
    members = lenient.membership("mine")
    lenient.membership("mine")  # read twice (as a run does): reported once
    assert members["instrument"].to_list() == ["SYN0001", "SYN0003"]
    assert [s.path for s in lenient.skipped_membership()] == [f"{universe}, line 3"]
    assert "before it starts" in lenient.skipped_membership()[0].reason


def test_unknown_scheme_and_options() -> None:
    with pytest.raises(SourceError, match=r"unknown scheme 'parquet'.*synthetic, qlib:<dir>, csv:<dir>"):
        open_source("parquet:/tmp/x")
    with pytest.raises(SourceError, match=r"PIPELINE_SOURCE 'qlib:' needs a directory"):
        open_source("qlib:")
    with pytest.raises(SourceError, match="unknown synthetic source option 'size'"):
        open_source("synthetic:size=3")
    with pytest.raises(SourceError, match="Qlib directory /nonexistent/dir does not exist"):
        open_source("qlib:/nonexistent/dir")
    assert isinstance(open_source("synthetic:seed=1,instruments=5,start=2020-01-01,end=2020-03-01"), SyntheticSource)


def test_csv_directory_must_have_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=re.escape(f"CSV directory {tmp_path} has no .csv files")):
        CsvDirSource(tmp_path)


def test_finalize_orders_rows_and_the_check_finds_a_duplicate_wherever_it_was() -> None:
    d1, d2 = dt.date(2021, 1, 4), dt.date(2021, 1, 5)
    frame = pl.DataFrame(
        {
            "instrument": ["BBB", "AAA", "BBB", "AAA", "BBB"],
            "date": [d2, d2, d1, d1, d2],  # BBB's 2021-01-05 twice, first and last
            **{c: [1.0, 2.0, 3.0, float("nan"), 5.0] for c in ("open", "high", "low", "close")},
            "volume": [10.0] * 5,
        }
    )
    bars = finalize_bars(frame)
    assert bars.select("instrument", "date").rows() == [
        ("AAA", d1), ("AAA", d2), ("BBB", d1), ("BBB", d2), ("BBB", d2),
    ]  # fmt: skip
    assert bars["close"].null_count() == 1  # NaN became null
    with pytest.raises(SourceError, match="duplicate date 2021-01-05 for instrument BBB"):
        check_bar_values(bars, "frame")
    # rows already in order come back as they are, and pass
    ordered = finalize_bars(bars.unique(["instrument", "date"], keep="first", maintain_order=True))
    assert ordered.height == 4 and ordered.equals(ordered.sort("instrument", "date"))
    check_bar_values(ordered, "frame")
