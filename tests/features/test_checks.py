"""The feature checks' statistics: unexpected all-null columns, expected ones, history shortfalls, inf and null
fractions against the thresholds."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

from features import checks
from features.catalog import FeatureSetSpec

CAL = [dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(10)]
SPEC = FeatureSetSpec(
    "t",
    (
        ("RATIO", "$high/$close"),
        ("LAG5", "Ref($close, 5)/$close"),
        ("VW", "$vwap/$close"),
        ("FWD", "Ref($close, -1)/$close"),
    ),
    "features_t",
    "test set",
)


def _bars(n_days: int, vwap: bool) -> pl.DataFrame:
    rows = [("A", CAL[i], 10.0 + i, 10.5 + i) for i in range(n_days)]
    frame = pl.DataFrame(rows, schema=["instrument", "date", "close", "high"], orient="row")
    return frame.with_columns(pl.lit(None, pl.Float64).alias("vwap") if not vwap else pl.col("close").alias("vwap"))


def _frame(bars: pl.DataFrame, **overrides: list) -> pl.DataFrame:
    n = bars.height
    values = {
        "RATIO": (bars["high"] / bars["close"]).to_list(),
        "LAG5": [None] * 5 + [1.0] * (n - 5),
        "VW": [None] * n,
        "FWD": [1.0] * (n - 1) + [None],
    }
    values.update(overrides)
    cols = {k: pl.Series(k, v, pl.Float32) for k, v in values.items()}
    return bars.select("instrument", "date").with_columns(**cols)


def test_healthy_window_passes_and_absent_field_is_expected() -> None:
    bars = _bars(10, vwap=False)
    quality = checks.inspect_window(SPEC, _frame(bars), bars, CAL)
    assert quality.all_null == [] and quality.warned == []
    assert [c.column for c in quality.expected_null] == ["VW"]
    stats = {c.column: c for c in quality.columns}
    assert stats["LAG5"].eligible == 5 and stats["LAG5"].eligible_values == 5
    assert stats["FWD"].eligible == 9
    assert math.isclose(stats["VW"].null_fraction, 1.0)


def test_all_null_column_with_present_fields_fails() -> None:
    bars = _bars(10, vwap=True)
    quality = checks.inspect_window(SPEC, _frame(bars), bars, CAL)
    assert [c.column for c in quality.all_null] == ["VW"]  # vwap is present now: VW should have values
    broken = _frame(bars, RATIO=[None] * 10, VW=[1.0] * 10)
    assert [c.column for c in checks.inspect_window(SPEC, broken, bars, CAL).all_null] == ["RATIO"]


def test_not_enough_history_is_not_judged() -> None:
    bars = _bars(4, vwap=True)  # LAG5 needs 5 earlier days
    frame = _frame(bars, LAG5=[None] * 4, VW=[1.0] * 4, FWD=[1.0] * 3 + [None])
    quality = checks.inspect_window(SPEC, frame, bars, CAL)
    assert quality.all_null == []
    assert {c.column: c.eligible for c in quality.columns}["LAG5"] == 0
    assert "no row with the history it needs" in quality.table_markdown()


def test_inf_and_null_fractions_warn() -> None:
    bars = _bars(10, vwap=True)
    frame = _frame(bars, RATIO=[math.inf] + [1.0] * 9, VW=[1.0] * 5 + [None] * 5)
    quality = checks.inspect_window(SPEC, frame, bars, CAL)
    stats = {c.column: c for c in quality.columns}
    assert stats["RATIO"].infs == 1 and stats["RATIO"].nulls == 0
    assert math.isclose(stats["VW"].eligible_null_fraction, 0.5)
    assert [c.column for c in quality.warned] == ["RATIO", "VW"]
    assert quality.all_null == []


def test_empty_window() -> None:
    bars = _bars(10, vwap=True)
    quality = checks.inspect_window(SPEC, _frame(bars).head(0), bars, CAL)
    assert quality.rows == 0 and quality.columns == []


def test_start_counts_the_rows_from_start_as_a_filtered_frame_would() -> None:
    bars = _bars(10, vwap=True)
    frame = _frame(bars, RATIO=[math.inf] * 3 + [1.0] * 7, VW=[None] * 6 + [1.0] * 4)
    start = frame["date"][4]
    masked = checks.inspect_window(SPEC, frame, bars, CAL, start=start)
    filtered = checks.inspect_window(SPEC, frame.filter(pl.col("date") >= start), bars, CAL)
    assert masked.rows == filtered.rows == 6
    assert masked.columns == filtered.columns
    assert {c.column: c.infs for c in masked.columns}["RATIO"] == 0  # the infs lie before start
    assert {c.column: c.nulls for c in masked.columns}["VW"] == 2
