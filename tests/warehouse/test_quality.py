"""The price-sanity rule on a real DuckDB warehouse: float rounding tolerated, glitches counted and graded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from warehouse.quality import PRICE_RTOL, check_price_sanity
from warehouse.sources.base import finalize_bars
from warehouse.store import Warehouse


def _warehouse(tmp_path: Path, closes: list[float]) -> Warehouse:
    n = len(closes)
    day0 = dt.date(2021, 1, 4)
    bars = finalize_bars(
        pl.DataFrame(
            {
                "instrument": ["AAA"] * n,
                "date": [day0 + dt.timedelta(days=i) for i in range(n)],
                "open": [10.0] * n,
                "high": [12.3] * n,
                "low": [9.7] * n,
                "close": closes,
                "volume": [100.0] * n,
                "factor": [1.0] * n,
            }
        )
    )
    wh = Warehouse(tmp_path / "wh.duckdb")
    wh.replace("bars", bars, date_range=(day0, day0 + dt.timedelta(days=n)))
    return wh


def test_rounding_is_tolerated_a_real_excess_is_not(tmp_path: Path) -> None:
    ulp32 = 2.0**-23
    rounding = [12.3 * (1 + ulp32), 9.7 * (1 - ulp32), 12.3 * (1 + 3 * ulp32)]  # float32 round-trip, adjustment
    assert 12.3 * (1 + 3 * ulp32) < 12.3 * (1 + PRICE_RTOL)
    wh = _warehouse(tmp_path, [11.0] * 97 + rounding)
    outcome = check_price_sanity(wh)
    assert outcome.passed and outcome.metadata["bad_rows"] == 0 and outcome.severity is None

    glitch = _warehouse(tmp_path / "g", [11.0] * 99 + [12.3 * (1 + 1e-5)])  # a tenth of a tick above the high
    glitch_outcome = check_price_sanity(glitch, max_bad_fraction=0.01)
    assert not glitch_outcome.passed and glitch_outcome.metadata["low <= close <= high"] == 1
    assert glitch_outcome.severity == "warn"  # 1 % of the rows, at the threshold: still a warning
    assert check_price_sanity(glitch, max_bad_fraction=0.009).severity == "error"
    assert "| AAA | 2021-04-13 |" in glitch_outcome.metadata["offending_rows"]


def test_offending_rows_are_capped(tmp_path: Path) -> None:
    wh = _warehouse(tmp_path, [20.0] * 60 + [11.0] * 40)
    outcome = check_price_sanity(wh)
    assert outcome.metadata["bad_rows"] == 60 and outcome.severity == "error"
    table = outcome.metadata["offending_rows"]
    assert table.count("| AAA |") == 50 and table.endswith("... and 10 more rows")
