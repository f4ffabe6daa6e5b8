"""Public API behaviour: row set, order, dtypes, edge cases of the inputs, errors."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from features import (
    ALPHA158_COLUMNS,
    ALPHA360_COLUMNS,
    LABEL_COLUMNS,
    compute_features,
    horizon,
    lookback,
)

CAL = [dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(40)]


def _bars(rows: list[tuple], with_vwap: bool = True) -> pl.DataFrame:
    """rows: (instrument, calendar index, open, high, low, close, volume)."""
    df = pl.DataFrame(
        [(r[0], CAL[r[1]], *map(float, r[2:])) for r in rows],
        schema=["instrument", "date", "open", "high", "low", "close", "volume"],
        orient="row",
    )
    if with_vwap:
        df = df.with_columns(((pl.col("high") + pl.col("low")) / 2).alias("vwap"))
    return df


def _walk(inst: str, days: list[int], start: float = 10.0) -> list[tuple]:
    rng = np.random.default_rng(abs(hash(inst)) % 1000)
    rows, price = [], start
    for t in days:
        price = round(price * (1 + rng.normal(0, 0.02)), 2)
        rows.append((inst, t, price, price + 0.1, price - 0.1, price + 0.02, 1000.0 + t))
    return rows


def _rising(inst: str, days: list[int]) -> list[tuple]:
    return [(inst, t, 10.0 + t, 10.5 + t, 9.5 + t, 10.2 + t, 1000.0 + t) for t in days]


def _col(frame: pl.DataFrame, inst: str, col: str) -> list:
    return frame.filter(pl.col("instrument") == inst).sort("date")[col].to_list()


def test_column_lists():
    assert len(ALPHA158_COLUMNS) == 158 and len(set(ALPHA158_COLUMNS)) == 158
    assert ALPHA158_COLUMNS[:13] == [
        "KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT", "KSFT2", "OPEN0", "HIGH0", "LOW0", "VWAP0",
    ]  # fmt: skip
    assert ALPHA158_COLUMNS[13:18] == ["ROC5", "ROC10", "ROC20", "ROC30", "ROC60"]
    assert ALPHA158_COLUMNS[13 + 5 * 7] == "MIN5" and ALPHA158_COLUMNS[-1] == "VSUMD60"
    assert len(ALPHA360_COLUMNS) == 360
    assert ALPHA360_COLUMNS[:2] == ["CLOSE59", "CLOSE58"] and ALPHA360_COLUMNS[59:61] == ["CLOSE0", "OPEN59"]
    assert ALPHA360_COLUMNS[-1] == "VOLUME0" and ALPHA360_COLUMNS[240] == "VWAP59"
    assert LABEL_COLUMNS == ["LABEL0"]


def test_lookback_and_horizon():
    assert lookback("alpha158") == 60
    assert lookback("alpha360") == 59
    assert lookback("label") == 0
    assert horizon("label") == 2 and horizon("alpha158") == 0


def test_unknown_name_lists_valid_names():
    bars = _bars(_walk("A", list(range(5))))
    with pytest.raises(ValueError, match=r"alpha158.*alpha360.*label"):
        compute_features("alpha999", bars, CAL)
    with pytest.raises(ValueError, match="unknown feature set"):
        lookback("Alpha158")


def test_rows_cover_every_day_from_first_to_last_bar_sorted():
    rows = _walk("B", [3, 4, 7, 8, 9]) + _walk("A", [0, 1, 2, 10])  # gaps are suspended days
    out = compute_features("alpha158", _bars(rows), CAL)
    assert out.select("instrument", "date").rows() == [("A", CAL[t]) for t in range(11)] + [
        ("B", CAL[t]) for t in range(3, 10)
    ]
    assert out.schema["date"] == pl.Date and out.schema["instrument"] == pl.Utf8
    assert all(out.schema[c] == pl.Float32 for c in ALPHA158_COLUMNS)


def test_first_days_and_suspended_days_follow_qlib():
    out = compute_features("alpha158", _bars(_rising("A", [0, 1, 2, 3, 6, 7, 8])), CAL)  # days 4 and 5 missing
    assert _col(out, "A", "STD5")[0] is None  # ddof=1 on one value
    assert _col(out, "A", "CNTP5")[:2] == [0.0, 0.5]  # comparisons with NaN count as "not up"
    assert _col(out, "A", "RANK5")[0] == 1.0
    assert _col(out, "A", "IMAX5")[:3] == pytest.approx([0.2, 0.4, 0.6])  # 1-based in the short window, /5
    assert _col(out, "A", "IMIN5")[:3] == pytest.approx([0.2, 0.2, 0.2])
    assert _col(out, "A", "ROC5")[:5] == [None] * 5
    assert _col(out, "A", "RSQR5")[0] is None and _col(out, "A", "CORR5")[0] is None
    # suspended day 4: price features are null, counts still exist, IdxMax points at the first NaN (today)
    day4 = out.filter(pl.col("date") == CAL[4])
    assert day4["KMID"][0] is None and day4["MA5"][0] is None and day4["RANK5"][0] is None
    assert day4["CNTP5"][0] is not None
    assert day4["IMAX5"][0] == pytest.approx(1.0)
    assert out.filter(pl.col("date") == CAL[5])["IMAX5"][0] == pytest.approx(0.8)  # first NaN at position 4


def test_single_bar_and_short_instruments():
    rows = _walk("ONE", [20]) + _walk("TWO", [0, 1])
    a158 = compute_features("alpha158", _bars(rows), CAL)
    a360 = compute_features("alpha360", _bars(rows), CAL)
    lab = compute_features("label", _bars(rows), CAL)
    assert a158.height == a360.height == lab.height == 3
    one = a360.filter(pl.col("instrument") == "ONE")
    assert one["CLOSE0"][0] == 1.0 and one["CLOSE1"][0] is None and one["VOLUME0"][0] == 1.0
    assert lab["LABEL0"].null_count() == 3


def test_label_is_return_from_next_close_to_the_one_after():
    rows = _walk("A", list(range(10)))
    lab = compute_features("label", _bars(rows), CAL)
    close = np.array([r[5] for r in rows], dtype=np.float32)
    want = close[2:] / close[1:-1] - np.float32(1)
    got = _col(lab, "A", "LABEL0")
    np.testing.assert_array_equal(np.array(got[:-2], dtype=np.float32), want)
    assert got[-2:] == [None, None]


def test_zero_volume_and_flat_days():
    rows = _walk("A", list(range(8)))
    rows[5] = ("A", 5, 10.0, 10.0, 10.0, 10.0, 0.0)  # flat, no trading
    out = compute_features("alpha158", _bars(rows), CAL)
    day = out.filter(pl.col("date") == CAL[5]).row(0, named=True)
    assert day["KLEN"] == 0.0 and day["KMID2"] == 0.0 and day["KSFT2"] == 0.0
    assert day["VMA5"] > 1e14  # Mean(volume)/(0 + 1e-12), as in Qlib
    a360 = compute_features("alpha360", _bars(rows), CAL).filter(pl.col("date") == CAL[5]).row(0, named=True)
    assert a360["VOLUME0"] == 0.0 and a360["VOLUME1"] > 1e14


def test_missing_vwap_gives_all_null_vwap_features_only():
    rows = _walk("A", list(range(30))) + _walk("B", list(range(5, 25)))
    with_vwap, without = _bars(rows), _bars(rows, with_vwap=False)
    null_vwap = with_vwap.with_columns(pl.lit(None, dtype=pl.Float64).alias("vwap"))
    for name, vwap_cols in (("alpha158", ["VWAP0"]), ("alpha360", [c for c in ALPHA360_COLUMNS if "VWAP" in c])):
        full = compute_features(name, with_vwap, CAL)
        for bars in (without, null_vwap):
            out = compute_features(name, bars, CAL)
            assert out.columns == full.columns
            assert all(out[c].null_count() == out.height for c in vwap_cols)
            others = [c for c in out.columns if c not in vwap_cols]
            assert out.select(others).equals(full.select(others))
        assert full["VWAP0"].null_count() < full.height


def test_lazyframe_input_and_calendar_forms():
    bars = _bars(_walk("A", list(range(12))))
    want = compute_features("alpha360", bars, CAL)
    assert compute_features("alpha360", bars.lazy(), pl.Series(CAL)).equals(want)
    assert compute_features("alpha360", bars, np.array(CAL, dtype="datetime64[D]")).equals(want)


def test_start_end_limit_rows():
    bars = _bars(_walk("A", list(range(30))))
    full = compute_features("alpha158", bars, CAL)
    part = compute_features("alpha158", bars, CAL, start=CAL[10], end="2021-01-24")
    assert part["date"].min() == CAL[10] and part["date"].max() == dt.date(2021, 1, 24)
    assert part.equals(full.filter(pl.col("date").is_between(CAL[10], dt.date(2021, 1, 24))))
    assert compute_features("alpha158", bars, CAL, start=CAL[35]).height == 0
    assert compute_features("alpha158", bars, CAL, start=CAL[35]).columns == full.columns


def test_bad_inputs_are_reported():
    bars = _bars(_walk("A", list(range(5))))
    with pytest.raises(ValueError, match="outside the calendar, e.g. instrument A on 2021-01-04"):
        compute_features("alpha158", bars, CAL[2:])
    with pytest.raises(ValueError, match="duplicate rows for instrument A on 2021-01-04"):
        compute_features("alpha158", pl.concat([bars, bars.head(1)]), CAL)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['volume'\]"):
        compute_features("alpha158", bars.drop("volume"), CAL)
    with pytest.raises(ValueError, match="calendar must be sorted"):
        compute_features("alpha158", bars, CAL[::-1])
    with pytest.raises(ValueError, match="start 2021-02-01 is after end 2021-01-05"):
        compute_features("alpha158", bars, CAL, start="2021-02-01", end="2021-01-05")
    label_only = bars.drop("open", "high", "low", "volume", "vwap")  # the label needs close only
    assert compute_features("label", label_only, CAL).height == 5


def test_division_by_a_zero_price_gives_inf_not_null():
    """Qlib's NaN is null in the output, but +-inf stays inf (here: ratios over an open of 0)."""
    rows = _walk("A", list(range(8)))
    rows[3] = ("A", 3, 0.0, 10.0, 9.0, 9.5, 100.0)
    day = compute_features("alpha158", _bars(rows), CAL).filter(pl.col("date") == CAL[3]).row(0, named=True)
    assert day["KMID"] == math.inf and day["KLEN"] == math.inf  # (close - open) / open, (high - low) / open
    assert day["KLOW"] == -math.inf  # (min(open, close) - low) / open
    assert day["OPEN0"] == 0.0
