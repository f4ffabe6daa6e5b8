"""Parity of evaluation/ with Qlib 0.9 on the real CSI300 data (dev only; nothing is written to the repo).

    /work/qlibenv/bin/python scripts/parity_backtest.py [--signal reversal|random] [--start 2019-01-01]
        [--end 2020-12-31] [--pin-order]

Builds a deterministic score for the CSI300 members of each day (a 20-day reversal of the close, with a
seeded 1e-9 jitter so that no two scores tie, or seeded random numbers), then runs

* Qlib: ``qlib.backtest.backtest`` with TopkDropoutStrategy(topk 50, n_drop 5) on a daily SimulatorExecutor,
  exchange limit_threshold 0.095, deal_price close, costs 0.0005 / 0.0015 / min 5, benchmark SH000300, and
  ``calc_ic`` / ``calc_long_short_return`` against the label Ref($close,-2)/Ref($close,-1)-1;
* ours: ``evaluation.backtest.run_backtest`` and ``evaluation.signal.signal_analysis`` on the same scores, with
  bars read by warehouse/sources/qlib_bin.py,

and prints both sets of numbers, their differences and the largest daily difference. ``--pin-order`` makes
Qlib list holdings in name order (see scripts/make_backtest_fixtures.py) instead of hash-seed set order.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402

from evaluation.backtest import BacktestConfig, run_backtest  # noqa: E402
from evaluation.market import benchmark_returns_from_bars  # noqa: E402
from evaluation.signal import signal_analysis  # noqa: E402
from warehouse.sources.qlib_bin import read_membership_file, read_qlib_bars  # noqa: E402

DATA = (REPO / ".." / "shared" / "data" / "qlib_cn").resolve()
BENCH = "SH000300"
LABEL = "Ref($close, -2)/Ref($close, -1) - 1"


def member_keys(bars: pl.DataFrame, universe: str) -> pl.DataFrame:
    """instrument, date rows of the bars where the instrument is a member of ``universe`` that day."""
    members = read_membership_file(DATA / "instruments" / f"{universe}.txt")
    return (
        bars.select("instrument", "date")
        .join(members, on="instrument")
        .filter(pl.col("date").is_between(pl.col("start_date"), pl.col("end_date")))
        .select("instrument", "date")
        .unique()
    )


def make_scores(bars: pl.DataFrame, keys: pl.DataFrame, kind: str, first: dt.date, last: dt.date) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    frame = bars.sort("instrument", "date").with_columns(
        (-(pl.col("close") / pl.col("close").shift(20).over("instrument") - 1)).alias("score")
    )
    frame = keys.join(frame.select("instrument", "date", "score"), on=["instrument", "date"], how="left")
    frame = frame.filter(pl.col("date").is_between(first, last)).sort("date", "instrument")
    if kind == "random":
        return frame.with_columns(pl.Series("score", rng.normal(size=frame.height)))
    frame = frame.filter(pl.col("score").is_not_null() & pl.col("score").is_not_nan())
    return frame.with_columns(pl.col("score") + pl.Series(rng.normal(scale=1e-9, size=frame.height)))


def run_qlib(scores: pl.DataFrame, start: dt.date, end: dt.date, pin_order: bool) -> tuple[pd.DataFrame, dict, dict]:
    import qlib
    from qlib.backtest import backtest
    from qlib.backtest.executor import SimulatorExecutor
    from qlib.contrib.eva.alpha import calc_ic, calc_long_short_return
    from qlib.contrib.evaluate import risk_analysis
    from qlib.contrib.strategy import TopkDropoutStrategy
    from qlib.data import D

    qlib.init(provider_uri=str(DATA), region="cn", kernels=1)
    if pin_order:
        from qlib.backtest.position import Position

        reserved = {"cash", "now_account_value", "cash_delay"}
        Position.get_stock_list = lambda self: sorted(set(self.position) - reserved)
    frame = scores.to_pandas()
    frame["datetime"] = pd.to_datetime(frame["date"])
    pred = frame.set_index(["datetime", "instrument"])["score"].sort_index()

    t0 = time.perf_counter()
    portfolio, _ = backtest(
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
    seconds = time.perf_counter() - t0
    report, positions = portfolio["1day"]
    report = report.copy()
    report["n_holdings"] = [len(positions[t].get_stock_list()) for t in report.index]
    metrics = {
        "excess_return_without_cost": risk_analysis(report["return"] - report["bench"])["risk"].to_dict(),
        "excess_return_with_cost": risk_analysis(report["return"] - report["bench"] - report["cost"])["risk"].to_dict(),
    }
    metrics["seconds"] = seconds

    in_range = (pred.index.get_level_values(0) >= pd.Timestamp(start)) & (
        pred.index.get_level_values(0) <= pd.Timestamp(end)
    )
    pred = pred[in_range]
    instruments = sorted(set(pred.index.get_level_values("instrument")))
    label = D.features(instruments, [LABEL], start, end)
    label.columns = ["LABEL0"]
    label = label.swaplevel().sort_index()["LABEL0"]
    label = label[label.index.isin(pred.index)]  # the dataset's label rows are the scored rows
    ic, ric = calc_ic(pred, label)
    long_short, long_avg = calc_long_short_return(pred, label)
    signal = {
        "ic": ic.mean(),
        "icir": ic.mean() / ic.std(),
        "rank_ic": ric.mean(),
        "rank_icir": ric.mean() / ric.std(),
        "long_short_ann_return": long_short.mean() * 252,
        "long_short_ann_sharpe": long_short.mean() / long_short.std() * 252**0.5,
        "long_avg_ann_return": long_avg.mean() * 252,
        "long_avg_ann_sharpe": long_avg.mean() / long_avg.std() * 252**0.5,
    }
    labels = label.reset_index()
    labels["date"] = pd.to_datetime(labels["datetime"]).dt.date
    signal["labels"] = pl.from_pandas(labels[["instrument", "date", "LABEL0"]])
    return report, metrics, signal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signal", choices=["reversal", "random"], default="reversal")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2019, 1, 1))
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2020, 12, 31))
    parser.add_argument("--pin-order", action="store_true")
    args = parser.parse_args()
    if not (DATA / "calendars" / "day.txt").is_file():
        raise SystemExit(f"real data not found at {DATA}")

    t0 = time.perf_counter()
    bars = read_qlib_bars(DATA, None, args.start - dt.timedelta(days=60), args.end + dt.timedelta(days=10))
    read_seconds = time.perf_counter() - t0
    calendar = np.unique(bars["date"].to_numpy())
    first_score = calendar[np.searchsorted(calendar, np.datetime64(args.start), "left") - 1].item()
    scores = make_scores(bars, member_keys(bars, "csi300"), args.signal, first_score, args.end)
    days = scores["date"].n_unique()
    print(f"{scores.height} scores for {days} days ({args.signal}); bars read in {read_seconds:.2f}s")

    report, qlib_metrics, qlib_signal = run_qlib(scores, args.start, args.end, args.pin_order)

    t0 = time.perf_counter()
    config = BacktestConfig(start_date=args.start, end_date=args.end)
    ours = run_backtest(scores, bars, benchmark_returns_from_bars(bars, BENCH), config)
    our_seconds = time.perf_counter() - t0
    in_range = scores.filter(pl.col("date").is_between(args.start, args.end))
    _, our_signal = signal_analysis(in_range, qlib_signal.pop("labels"))

    print(f"\nbacktest time: ours {our_seconds:.2f}s, Qlib {qlib_metrics.pop('seconds'):.2f}s")
    print(f"\n{'metric':48s} {'ours':>14s} {'qlib':>14s} {'diff':>11s}")
    for series in ("excess_return_without_cost", "excess_return_with_cost"):
        for name in ("annualized_return", "information_ratio", "max_drawdown", "mean", "std"):
            a, b = ours.metrics[series][name], qlib_metrics[series][name]
            print(f"{series + '.' + name:48s} {a:14.8f} {b:14.8f} {a - b:11.2e}")
    for name, b in qlib_signal.items():
        a = our_signal[name]
        print(f"{name:48s} {a:14.8f} {b:14.8f} {a - b:11.2e}")

    q = report.reset_index()
    ours_daily = ours.daily
    if ours_daily.height != len(q):
        print(f"\nday counts differ: ours {ours_daily.height}, Qlib {len(q)}")
        return
    print()
    for col in ("return", "cost", "turnover", "bench", "account"):
        diff = np.abs(ours_daily[col].to_numpy() - q[col].to_numpy(dtype=float))
        print(f"daily {col:10s} max abs diff {diff.max():.3e}")
    holdings = ours_daily["n_holdings"].to_numpy() != q["n_holdings"].to_numpy()
    first = ours_daily["date"][int(np.argmax(holdings))] if holdings.any() else None
    print(f"days with a different holding count: {int(holdings.sum())} (first: {first})")


if __name__ == "__main__":
    main()
