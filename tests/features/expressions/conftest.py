"""Small generated markets for the expression engine's tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

FIELDS = ["open", "high", "low", "close", "volume"]


def make_market(seed: int = 0, n_days: int = 90) -> tuple[pl.DataFrame, pl.Series]:
    """Bars of five instruments on a business-day calendar, with what Qlib's semantics must survive: listings
    and delistings inside the calendar, days without a bar inside a span, NaN values, zero volumes (so
    ``1/$volume`` is inf), a run of zero volume and a run of constant prices, and a very short instrument."""
    rng = np.random.default_rng(seed)
    days, d = [], dt.date(2020, 1, 1)
    while len(days) < n_days:
        if d.weekday() < 5:
            days.append(d)
        d += dt.timedelta(days=1)
    spans = {"AAA": (0, n_days - 1), "BBB": (12, n_days - 1), "CCC": (0, 60), "DDD": (5, 80), "EEE": (40, 44)}
    frames = []
    for k, (inst, (lo, hi)) in enumerate(spans.items()):
        n = hi - lo + 1
        close = (10 + 5 * k) * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        open_ = close * np.exp(rng.normal(0, 0.01, n))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, n))
        volume = rng.uniform(1e3, 1e5, n).round()
        if inst == "AAA":
            volume[20:28] = 0.0  # a suspension carried forward with zero volume
            close[30:37] = close[30]  # a constant run
        if inst == "DDD":
            close[[7, 8, 30]] = np.nan
            volume[50] = 0.0
        frame = pl.DataFrame({"instrument": inst, "date": days[lo : hi + 1], "open": open_, "high": high,
                              "low": low, "close": close, "volume": volume})  # fmt: skip
        if inst in ("BBB", "DDD"):  # days without a bar inside the span
            keep = np.ones(n, dtype=bool)
            keep[[3, 4, 5, 17, n - 3]] = False
            frame = frame.filter(pl.Series(keep))
        frames.append(frame)
    return pl.concat(frames), pl.Series("date", days, dtype=pl.Date)


@pytest.fixture(scope="session")
def market() -> tuple[pl.DataFrame, pl.Series]:
    return make_market()
