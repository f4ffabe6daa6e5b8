"""Std and Var run pandas' own rolling kernel, so they carry Qlib's residue on windows of equal values (the
zero-volume suspensions behind Alpha158's VSTD / WVMA), per instrument from its first day."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from features.expressions import compute_columns

SUSPENSIONS = [(300 * k + 200, 300 * k + 230) for k in range(4)]


def _series(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.uniform(1e6, 3e7, n).astype(np.float32).astype(np.float64)
    for lo, hi in SUSPENSIONS:
        v[lo:hi] = 0.0  # suspensions carried forward: volume 0 after large volumes
    v[70:72] = np.nan
    v[100:130] = v[99]  # a run of one repeated value
    return v


@pytest.fixture(scope="module")
def market():
    rng = np.random.default_rng(24)
    days = [dt.date(2015, 1, 1) + dt.timedelta(days=i) for i in range(1300)]
    spans = {"AAA": (0, 1299), "BBB": (30, 1250), "CCC": (5, 1200), "DDD": (0, 1299), "EEE": (2, 1290)}
    frames, want = [], {}
    for inst, (lo, hi) in spans.items():
        vol = _series(rng, hi - lo + 1)
        want[inst] = vol
        frames.append(pl.DataFrame({"instrument": inst, "date": days[lo : hi + 1], "close": 10.0, "volume": vol}))
    bars = pl.concat(frames).with_columns(pl.col("volume").fill_nan(None))
    return bars, days, want


@pytest.mark.parametrize("n", [5, 20, 0])
def test_std_and_var_equal_pandas_bit_for_bit(market, n):
    bars, days, want = market
    cols = [("S", f"Std($volume, {n})"), ("V", f"Var($volume, {n})"), ("R", f"Std($volume, {n})/($volume+1e-12)")]
    out = compute_columns(cols, bars, days, required=("volume",))
    residue = 0
    for inst, vol in want.items():
        s = pd.Series(vol)
        roll = s.expanding(min_periods=1) if n == 0 else s.rolling(n, min_periods=1)
        std, var = roll.std().to_numpy(), roll.var().to_numpy()
        got = out.filter(pl.col("instrument") == inst)
        np.testing.assert_array_equal(got["S"].fill_null(np.nan).to_numpy(), std.astype(np.float32))
        np.testing.assert_array_equal(got["V"].fill_null(np.nan).to_numpy(), var.astype(np.float32))
        if n:
            # the suspensions' full windows: pandas' running sums may leave a residue where the exact std is 0
            ratio = got["R"].fill_null(np.nan).to_numpy()
            for lo, hi in SUSPENSIONS:
                if hi <= vol.size:
                    zero_windows = std[lo + n - 1 : hi]
                    residue += int((zero_windows != 0).sum())
                    want_ratio = (zero_windows / 1e-12).astype(np.float32)
                    np.testing.assert_array_equal(ratio[lo + n - 1 : hi], want_ratio)
    if n:
        assert residue > 0, "the fixture no longer exercises the residue"


def test_each_instrument_starts_a_fresh_sum(market):
    bars, days, want = market
    alone = compute_columns([("S", "Std($volume, 20)")], bars.filter(pl.col("instrument") == "BBB"), days)
    together = compute_columns([("S", "Std($volume, 20)")], bars, days).filter(pl.col("instrument") == "BBB")
    assert alone.equals(together)


@pytest.mark.parametrize("n", [5, 20])
def test_a_query_start_sets_the_series_start_as_in_qlib(market, n):
    """Qlib loads a column from its query start minus the column's reach (n - 1 days for Std(x, n)) and the
    residue follows from there: with ``start``, each instrument's series starts that many days back (a query
    from inside a suspension sees no trading before it, so no residue)."""
    bars, days, want = market
    changed = 0
    for lo, _ in SUSPENSIONS:
        start = days[lo + n + 2]
        # beside a longer column, so the rows read start before this column's reach
        cols = [("S", f"Std($volume, {n})"), ("M", "Mean($volume, 60)")]
        out = compute_columns(cols, bars, days, start=start, required=("volume",))
        for inst, vol in want.items():
            offset = days.index(bars.filter(pl.col("instrument") == inst)["date"].min())
            at = days.index(start) - offset  # the start's row in the instrument's series
            if at >= vol.size:
                continue
            first = max(at - (n - 1), 0)
            ref = pd.Series(vol[first:]).rolling(n, min_periods=1).std().to_numpy()[at - first :]
            got = out.filter(pl.col("instrument") == inst)["S"].fill_null(np.nan).to_numpy()
            np.testing.assert_array_equal(got, ref.astype(np.float32))
            whole = pd.Series(vol).rolling(n, min_periods=1).std().to_numpy()[at:]
            changed += int((whole.astype(np.float32) != got).sum())
    assert changed > 0, "the fixture no longer shows the dependence on the series start"


def test_the_input_reach_delays_the_series_as_in_qlib(market):
    """Std(x - Ref(x, 1), 20) from a query start: Qlib loads x from 20 days back, so Ref's first value there is
    NaN and the Std series has its first value 19 days before the start; the residue on later suspensions
    follows from that first value (one value more would change some of them)."""
    bars, days, want = market
    n = 20
    # with a longer column beside it, the rows read start earlier than this column's own reach
    expr = [("S", f"Std($volume - Ref($volume, 1), {n})"), ("M", "Mean($volume, 60)")]
    sensitive = 0
    for at in (150, 400, 700):  # the start's row in each instrument's series
        for inst, vol in want.items():
            offset = days.index(bars.filter(pl.col("instrument") == inst)["date"].min())
            out = compute_columns(expr, bars, days, start=days[at + offset], required=("volume",))
            got = out.filter(pl.col("instrument") == inst)["S"].fill_null(np.nan).to_numpy()
            v32 = vol.astype(np.float32)  # fields and element-wise arithmetic are float32, as in Qlib
            x = np.concatenate([[np.nan], (v32[1:] - v32[:-1]).astype(np.float64)])  # row k: v[k] - v[k-1]
            right = pd.Series(x[at - n + 1 :]).rolling(n, min_periods=1).std().to_numpy()[n - 1 :]
            one_more = pd.Series(x[at - n :]).rolling(n, min_periods=1).std().to_numpy()[n:]
            np.testing.assert_array_equal(got, right.astype(np.float32))
            sensitive += int((right.astype(np.float32) != one_more.astype(np.float32)).sum())
    assert sensitive > 0, "the fixture no longer has a start where one more day of series changes the values"


def test_the_public_pandas_path_gives_the_same_numbers(market):
    """The kernel is called directly; a pandas without that entry point goes through its public indexer API."""
    from features.expressions.numpy_fallback import _pandas_var, public_pandas_var

    values = _series(np.random.default_rng(3), 900)
    rows = np.arange(values.size, dtype=np.int64)
    first = np.where(rows < 450, 0, 450)  # two instruments end to end
    start = np.maximum(rows - 19, first)
    np.testing.assert_array_equal(_pandas_var(values, start, rows + 1), public_pandas_var(values, start, rows + 1))
