"""The synthetic market's sectors and themes (its concepts), and the planted sector-level reversal, measured on the
bars as a model would see them: the sector's mean change of day t against each member's change of day t+2."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from warehouse.sources import SyntheticSource
from warehouse.sources import synthetic as synthetic_module
from warehouse.sources.synthetic import BENCHMARK, SyntheticSpec


@pytest.fixture(scope="module")
def default_market() -> SyntheticSource:
    return SyntheticSource()


def test_every_instrument_has_one_sector_and_some_a_theme(default_market: SyntheticSource) -> None:
    concepts = default_market.concepts()
    names = default_market.membership(None)["instrument"].sort().to_list()
    sectors = concepts.filter(pl.col("concept").str.starts_with("sector:"))
    themes = concepts.filter(pl.col("concept").str.starts_with("theme:"))
    assert sectors.height + themes.height == concepts.height
    assert sectors["instrument"].sort().to_list() == names  # one sector each
    sizes = sectors.group_by("concept").len()["len"]
    assert sizes.len() == 10 and sizes.min() == sizes.max() == 20
    assert themes["instrument"].is_unique().all() and 0.15 < themes.height / len(names) < 0.45
    assert themes["concept"].n_unique() == 3
    assert BENCHMARK not in concepts["instrument"].to_list()
    assert default_market.concepts_origin().startswith("synthetic sectors: 10 sectors and 3 themes")
    again = SyntheticSource().concepts()
    assert again.equals(concepts)
    other = SyntheticSource(SyntheticSpec(seed=8)).concepts()
    assert not other.equals(concepts)


def test_small_markets_have_at_least_two_sectors() -> None:
    spec = SyntheticSpec(seed=3, instruments=12, start=dt.date(2020, 1, 1), end=dt.date(2020, 12, 31), core_size=6)
    sectors = SyntheticSource(spec).concepts().filter(pl.col("concept").str.starts_with("sector:"))
    assert sectors.group_by("concept").len()["len"].sort().to_list() == [6, 6]


def _panel(source: SyntheticSource) -> tuple[np.ndarray, np.ndarray]:
    """[days x stocks] change (NaN: no bar) and each stock's sector code."""
    bars = source.read_bars(None).bars.filter(pl.col("instrument") != BENCHMARK)
    wide = bars.pivot(on="instrument", index="date", values="change").sort("date")
    names = wide.columns[1:]
    sector_of = dict(source.concepts().filter(pl.col("concept").str.starts_with("sector:")).rows())
    codes = {s: i for i, s in enumerate(sorted(set(sector_of.values())))}
    return wide.drop("date").to_numpy(), np.array([codes[sector_of[n]] for n in names])


def _sector_term(change: np.ndarray, sector: np.ndarray) -> np.ndarray:
    """-(sector mean change - mean change of all) of day t, for each stock; NaN where the sector had no bar."""
    onehot = np.eye(sector.max() + 1)[sector]
    on = ~np.isnan(change)
    values = np.nan_to_num(change)
    count = on @ onehot
    sector_mean = (values @ onehot) / np.where(count > 0, count, np.nan)
    all_mean = values.sum(axis=1, keepdims=True) / np.maximum(on.sum(axis=1, keepdims=True), 1)
    return -((sector_mean - all_mean) @ onehot.T)


def _mean_daily_ic(x: np.ndarray, y: np.ndarray) -> float:
    """Mean over days of the cross-sectional Pearson correlation (days with 20 or more pairs)."""
    both = ~np.isnan(x) & ~np.isnan(y)
    n = both.sum(axis=1)
    dx = np.where(both, x - np.nansum(np.where(both, x, 0), axis=1, keepdims=True) / np.maximum(n, 1)[:, None], 0)
    dy = np.where(both, y - np.nansum(np.where(both, y, 0), axis=1, keepdims=True) / np.maximum(n, 1)[:, None], 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = (dx * dy).sum(axis=1) / np.sqrt((dx**2).sum(axis=1) * (dy**2).sum(axis=1))
    return float(np.nanmean(ic[n >= 20]))


def _ic_at_lag(source: SyntheticSource, lag: int, shuffle_sectors: bool = False) -> float:
    change, sector = _panel(source)
    if shuffle_sectors:
        sector = np.random.default_rng(0).permutation(sector)
    term = _sector_term(change, sector)
    return _mean_daily_ic(term[:-lag], change[lag:])


def test_planted_sector_reversal_is_measurable(default_market: SyntheticSource, monkeypatch) -> None:
    # The day-t sector term predicts each member's change of day t+2 (the label of day t): about 0.10 on the
    # default market, over ~1,000 days of ~190 names (a day's IC has a standard error of about 0.07).
    planted = _ic_at_lag(default_market, 2)
    assert planted > 0.07
    # Nothing planted at lag 1, and random groups of the same sizes carry little of it.
    assert abs(_ic_at_lag(default_market, 1)) < 0.02
    assert _ic_at_lag(default_market, 2, shuffle_sectors=True) < planted / 3
    # The same market without the term (LAMBDA = 0): the effect is gone, so it is the planted term.
    monkeypatch.setattr(synthetic_module, "LAMBDA", 0.0)
    assert abs(_ic_at_lag(SyntheticSource(), 2)) < 0.02
