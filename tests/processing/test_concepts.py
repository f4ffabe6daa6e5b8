"""Concepts: the long form round trip, and concepts derived from return correlation over the train segment only
(deterministic, blind to anything after the train end, recovering the synthetic market's planted sectors)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from processing.concepts import Concepts, daily_returns, derive_concepts
from warehouse.sources import SyntheticSource
from warehouse.sources.synthetic import BENCHMARK, SyntheticSpec
from workflow.segments import default_segments

SPEC = SyntheticSpec(seed=5, instruments=56, start=dt.date(2019, 1, 1), end=dt.date(2020, 12, 31), core_size=20)


@pytest.fixture(scope="module")
def market() -> tuple[SyntheticSource, pl.DataFrame, tuple[dt.date, dt.date]]:
    source = SyntheticSource(SPEC)
    bars = source.read_bars(None).bars.filter(pl.col("instrument") != BENCHMARK)
    return source, daily_returns(bars), default_segments(source.calendar()).train


def test_members_round_trip_and_sizes() -> None:
    rows = pl.DataFrame({"instrument": ["B", "A", "A", "C", "A"], "concept": ["bank", "bank", "tech", "tech", "bank"]})
    c = Concepts.from_members(rows, "a file")
    assert c.instruments.tolist() == ["A", "B", "C"] and c.names == ("bank", "tech")
    assert c.matrix.tolist() == [[1, 1], [1, 0], [0, 1]]
    assert c.members().rows() == [("A", "bank"), ("A", "tech"), ("B", "bank"), ("C", "tech")]
    assert c.sizes().rows() == [("bank", 2), ("tech", 2)]
    assert c.rows_for(np.array(["C", "Z"])).tolist() == [[0, 1], [0, 0]]
    partial = Concepts(np.array(["A", "B"]), np.array([[1, 0], [0, 0]], dtype=np.float32), ("x", "y"), "s")
    assert partial.covered().tolist() == ["A"] and partial.sizes().rows() == [("x", 1), ("y", 0)]


def test_daily_returns_by_hand() -> None:
    bars = pl.DataFrame(
        {
            "instrument": ["A", "A", "A", "B", "B"],
            "date": [dt.date(2021, 1, d) for d in (4, 5, 7, 4, 5)],
            "close": [10.0, 11.0, 9.9, 2.0, 2.5],
        }
    )
    got = daily_returns(bars)
    assert got["instrument"].to_list() == ["A", "A", "B"]
    assert got["return"].to_list() == pytest.approx([0.1, -0.1, 0.25])


def test_derived_clusters_recover_the_planted_sectors(market) -> None:
    source, returns, train = market
    derived = derive_concepts(returns, *train, n_concepts=7)
    truth = Concepts.from_members(source.concepts().filter(pl.col("concept").str.starts_with("sector:")), "sectors")
    assert truth.n_concepts == 7
    # Each derived cluster against the planted sectors: nearly all of a cluster's members share one sector.
    overlap = derived.matrix.T @ truth.rows_for(derived.instruments)
    assert overlap.max(axis=1).sum() / overlap.sum() >= 0.9
    assert derived.names == tuple(f"cluster_{i:02d}" for i in range(1, 8))
    sizes = derived.sizes()["instruments"].to_list()
    assert sizes == sorted(sizes, reverse=True)  # numbered by size
    assert derived.source.startswith(
        f"derived: 7 clusters of daily-return correlation over the train segment {train[0]}..{train[1]}"
    )


def test_derivation_is_deterministic_and_reads_the_train_segment_only(market) -> None:
    _, returns, train = market
    base = derive_concepts(returns, *train, n_concepts=6, seed=3)
    again = derive_concepts(returns, *train, n_concepts=6, seed=3)
    assert np.array_equal(base.matrix, again.matrix) and base.source == again.source
    # Every return after the train end replaced, and an instrument that lists afterwards: the same concepts.
    rng = np.random.default_rng(0)
    after = pl.col("date") > train[1]
    noise = pl.Series(rng.normal(0, 0.05, returns.height))
    changed = returns.with_columns(pl.when(after).then(noise).otherwise(pl.col("return")).alias("return"))
    late = pl.DataFrame(
        {"instrument": "NEW0001", "date": [train[1] + dt.timedelta(days=d) for d in range(1, 400)], "return": 0.01}
    )
    changed = pl.concat([changed, late])
    assert changed.filter(after)["return"].to_list() != returns.filter(after)["return"].to_list()
    other = derive_concepts(changed, *train, n_concepts=6, seed=3)
    assert np.array_equal(other.instruments, base.instruments)
    assert np.array_equal(other.matrix, base.matrix) and other.names == base.names and other.source == base.source
    # ... while the train segment's returns do decide them: the same returns under shuffled names regroup them.
    names = returns["instrument"].unique().sort()
    shuffle = dict(zip(names.to_list(), names.sample(fraction=1.0, shuffle=True, seed=1).to_list(), strict=True))
    renamed = returns.with_columns(pl.col("instrument").replace_strict(shuffle))
    assert not np.array_equal(derive_concepts(renamed, *train, n_concepts=6, seed=3).matrix, base.matrix)


def test_short_train_history_goes_to_no_concept(market) -> None:
    _, returns, train = market
    late = returns.filter(pl.col("instrument") == "SYN0001").filter(pl.col("date") > train[1] - dt.timedelta(days=60))
    thin = pl.concat([returns.filter(pl.col("instrument") != "SYN0001"), late])
    derived = derive_concepts(thin, *train, n_concepts=5, min_days=100)
    row = derived.rows_for(np.array(["SYN0001"]))
    assert "SYN0001" in derived.instruments and row.sum() == 0
    days = thin.filter(pl.col("date").is_between(*train)).group_by("instrument").len()
    short = sorted(days.filter(pl.col("len") < 100)["instrument"].to_list())  # late listings of the market too
    assert "SYN0001" in short and len(short) < days.height // 2
    assert f"{len(short)} instrument(s) with fewer than 100 train days in no concept" in derived.source
    assert sorted(set(derived.instruments) - set(derived.covered())) == short


def test_too_few_instruments_is_an_error(market) -> None:
    _, returns, train = market
    one = returns.filter(pl.col("instrument") == "SYN0002")
    with pytest.raises(ValueError, match=r"1 instrument\(s\) have at least \d+ train days of returns, 2 or more"):
        derive_concepts(one, *train)
