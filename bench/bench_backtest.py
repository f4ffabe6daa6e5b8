"""Speed of evaluation.backtest.run_backtest on one year of a CSI300-size market, and of Qlib's when available.

    .venv/bin/python bench/bench_backtest.py                  # ours only
    /work/qlibenv/bin/python bench/bench_backtest.py          # ours and Qlib 0.9 (same data, same scores)
    ... [--synthetic] [--year 2020] [--repeat 3]

Uses the real data at ../shared/data/qlib_cn (CSI300 members, a 20-day reversal score) when present, else (or
with --synthetic) a random market of the same size: 300 stocks x 242 days. TopkDropout 50/5 with Qlib's
benchmark exchange settings. Timings exclude reading the data; ours includes building its day x stock arrays.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from evaluation.backtest import BacktestConfig, BacktestResult, run_backtest  # noqa: E402
from evaluation.market import benchmark_returns_from_bars  # noqa: E402
from warehouse.sources.qlib_bin import read_membership_file, read_qlib_bars, write_qlib_dir  # noqa: E402

DATA = (REPO / ".." / "shared" / "data" / "qlib_cn").resolve()
BENCH = "SH000300"


def real_market(year: int) -> tuple[pl.DataFrame, pl.DataFrame, dt.date, dt.date]:
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    bars = read_qlib_bars(DATA, None, start - dt.timedelta(days=60), end + dt.timedelta(days=10))
    members = read_membership_file(DATA / "instruments" / "csi300.txt")
    keys = (
        bars.select("instrument", "date")
        .join(members, on="instrument")
        .filter(pl.col("date").is_between(pl.col("start_date"), pl.col("end_date")))
        .select("instrument", "date")
        .unique()
    )
    reversal = bars.sort("instrument", "date").select(
        "instrument", "date", (-(pl.col("close") / pl.col("close").shift(20).over("instrument") - 1)).alias("score")
    )
    wanted = pl.col("date").is_between(start - dt.timedelta(days=10), end)
    scores = keys.join(reversal, on=["instrument", "date"]).filter(
        pl.col("score").is_not_null() & pl.col("score").is_not_nan() & wanted
    )
    rng = np.random.default_rng(7)  # 1e-9 jitter: no exact ties, whose order Qlib's quicksort leaves open
    scores = scores.sort("date", "instrument").with_columns(
        pl.col("score") + pl.Series(rng.normal(scale=1e-9, size=scores.height))
    )
    return bars, scores, start, end


def synthetic_market(n_stocks: int = 300, n_days: int = 242) -> tuple[pl.DataFrame, pl.DataFrame, dt.date, dt.date]:
    rng = np.random.default_rng(11)
    days = np.busday_offset(np.datetime64("2021-01-04"), np.arange(n_days + 2)).astype("datetime64[D]").tolist()
    names = [f"SH{600000 + k}" for k in range(n_stocks)] + [BENCH]
    ret = np.clip(rng.normal(0, 0.02, (len(names), len(days))), -0.1, 0.1)
    ret[rng.random(ret.shape) < 0.02] = 0.1
    close = 20 * np.cumprod(1 + ret, axis=1)
    change = np.concatenate([np.full((len(names), 1), np.nan), close[:, 1:] / close[:, :-1] - 1], axis=1)
    inst = np.repeat(names, len(days))
    bars = pl.DataFrame(
        {
            "instrument": inst,
            "date": np.tile(np.array(days, dtype="datetime64[D]"), len(names)),
            "open": close.ravel(),
            "high": close.ravel(),
            "low": close.ravel(),
            "close": close.ravel(),
            "volume": np.full(inst.size, 1e6),
            "factor": np.ones(inst.size),
            "change": change.ravel(),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    bars = bars.filter(pl.Series(rng.random(bars.height) > 0.01) | (pl.col("instrument") == BENCH))  # suspensions
    scores = bars.filter(pl.col("instrument") != BENCH).select(
        "instrument", "date", pl.Series("score", rng.normal(size=bars.height - len(days)))
    )
    return bars, scores, days[1], days[-2]  # Qlib needs a calendar day after the end


def time_ours(
    bars: pl.DataFrame, scores: pl.DataFrame, start: dt.date, end: dt.date, repeat: int
) -> tuple[list[float], BacktestResult]:
    bench = benchmark_returns_from_bars(bars, BENCH)
    config = BacktestConfig(start_date=start, end_date=end)
    seconds: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run_backtest(scores, bars, bench, config)
        seconds.append(time.perf_counter() - t0)
    return seconds, result


def time_qlib(provider: Path, scores: pl.DataFrame, start: dt.date, end: dt.date) -> float:
    import pandas as pd
    import qlib
    from qlib.backtest import backtest
    from qlib.backtest.executor import SimulatorExecutor
    from qlib.contrib.strategy import TopkDropoutStrategy

    qlib.init(provider_uri=str(provider), region="cn", kernels=1)
    frame = scores.to_pandas()
    frame["datetime"] = pd.to_datetime(frame["date"])
    pred = frame.set_index(["datetime", "instrument"])["score"].sort_index()
    t0 = time.perf_counter()
    backtest(
        start_time=pd.Timestamp(start),
        end_time=pd.Timestamp(end),
        strategy=TopkDropoutStrategy(signal=pred, topk=50, n_drop=5),
        executor=SimulatorExecutor(time_per_step="day", generate_portfolio_metrics=True),
        benchmark=BENCH,
        account=100_000_000,
        exchange_kwargs={
            "freq": "day",
            "limit_threshold": 0.095,
            "deal_price": "close",
            "open_cost": 0.0005,
            "close_cost": 0.0015,
            "min_cost": 5,
        },
    )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--year", type=int, default=2020)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    real = not args.synthetic and (DATA / "calendars" / "day.txt").is_file()
    bars, scores, start, end = real_market(args.year) if real else synthetic_market()
    seconds, result = time_ours(bars, scores, start, end, args.repeat)
    n_days = result.daily.height
    n_names = scores.filter(pl.col("date").is_between(start, end))["instrument"].n_unique()
    source = f"real CSI300 {args.year}" if real else "synthetic"
    print(f"market: {source}, {n_days} trading days, {n_names} scored names, {bars.height} bar rows")
    print(f"ours: best {min(seconds):.3f}s, median {statistics.median(seconds):.3f}s over {len(seconds)} runs")
    try:
        import qlib  # noqa: F401
    except ImportError:
        print("qlib: not importable here (run with /work/qlibenv/bin/python to compare)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        provider = DATA
        if not real:
            calendar = sorted(bars["date"].unique().to_list())
            provider = write_qlib_dir(Path(tmp) / "qlib", bars, calendar)
        qlib_seconds = time_qlib(provider, scores, start, end)
    print(f"qlib: {qlib_seconds:.3f}s  (qlib / ours = {qlib_seconds / min(seconds):.1f}x)")


if __name__ == "__main__":
    main()
