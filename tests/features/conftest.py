"""Shared inputs for the feature tests: the committed synthetic fixture (bars, calendar, Qlib's output)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "features"


@pytest.fixture(scope="session")
def fixture_bars() -> pl.DataFrame:
    return pl.read_parquet(FIXTURES / "bars.parquet")


@pytest.fixture(scope="session")
def fixture_calendar() -> pl.Series:
    return pl.read_parquet(FIXTURES / "calendar.parquet")["date"]


@pytest.fixture(scope="session")
def qlib_reference() -> dict[str, pl.DataFrame]:
    """Qlib 0.9.7's own output on the fixture bars (NaN for missing, as Qlib gives it)."""
    return {name: pl.read_parquet(FIXTURES / f"qlib_{name}.parquet") for name in ("alpha158", "alpha360", "label")}
