"""Parity of evaluation/ with Qlib 0.9 on the real CSI300 data (dev only; nothing is written to the repo).

    /work/qlibenv/bin/python scripts/parity_backtest.py [--signal reversal|random] [--start 2019-01-01]
        [--end 2020-12-31] [--pin-order] [--ours-python .venv/bin/python]

Builds a deterministic score for the CSI300 members of each day (a 20-day reversal of the close, with a
seeded 1e-9 jitter so that no two scores tie, or seeded random numbers) and compares, for both ways the scores
can meet the backtest window [--start, --end]:

* first_day: the scores start on --start (Qlib's workflow: predictions and backtest cover the test segment), so
  day 1 trades nothing and is a report row with return 0 and excess -bench;
* previous_day: the scores start the trading day before --start, so day 1 already trades on them;

Qlib: ``qlib.backtest.backtest`` with TopkDropoutStrategy(topk 50, n_drop 5) on a daily SimulatorExecutor,
exchange limit_threshold 0.095, deal_price close, costs 0.0005 / 0.0015 / min 5, benchmark SH000300, and
``calc_ic`` / ``calc_long_short_return`` against the label Ref($close,-2)/Ref($close,-1)-1;
ours: ``workflow.evaluation.evaluate_backtest(..., window=(start, end))`` (what the backtest asset calls) over a
scratch warehouse holding the bars read by warehouse/sources/qlib_bin.py, and ``evaluate_signal``. Our side
runs in the project's Python (--ours-python, which has DuckDB; pyqlib's environment has not), fed through
parquet files in a temporary folder.

Prints, per convention, every risk metric of both sides and its difference, the report days on each side and
the largest daily difference of each report column. ``--pin-order`` makes Qlib list holdings in name order
(see scripts/make_backtest_fixtures.py) instead of hash-seed set order.
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

from evaluation.backtest import BacktestConfig  # noqa: E402
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


OUR_PYTHON = REPO / ".venv" / "bin" / "python"
CONVENTIONS = {
    # Qlib's workflow: the scores are the test segment's own predictions, the backtest window is that segment
    "first_day": "scores start on the window's first day (Qlib's workflow: day 1 trades nothing)",
    # scores of the trading day before the window exist, so day 1 already trades on them
    "previous_day": "scores start the trading day before the window (day 1 trades)",
}
REPORT_COLUMNS = ("return", "cost", "turnover", "bench", "account")
METRICS = ("annualized_return", "information_ratio", "max_drawdown", "mean", "std")
SERIES = ("excess_return_without_cost", "excess_return_with_cost")


def run_ours(work: Path, start: dt.date, end: dt.date) -> None:
    """Our side, in the project's own environment (pyqlib's has no DuckDB): the bars go into a scratch warehouse
    and each convention's scores through ``workflow.evaluation.evaluate_backtest`` with the window, as the
    backtest asset calls it (window = the test segment); the IC through ``evaluate_signal``."""
    import json

    from warehouse.store import Warehouse
    from workflow.evaluation import evaluate_backtest, evaluate_signal

    warehouse = Warehouse(work / "warehouse.duckdb")
    warehouse.ensure_schema()
    warehouse.replace("bars", pl.read_parquet(work / "bars.parquet"))
    out: dict = {"seconds": {}}
    for name in CONVENTIONS:
        scores = pl.read_parquet(work / f"scores_{name}.parquet")
        t0 = time.perf_counter()
        result = evaluate_backtest(warehouse, scores, BENCH, BacktestConfig(), window=(start, end))
        out["seconds"][name] = time.perf_counter() - t0
        result.daily.write_parquet(work / f"ours_daily_{name}.parquet")
        out[name] = result.metrics
    in_range = pl.read_parquet(work / "scores_first_day.parquet")
    out["signal"] = evaluate_signal(in_range, pl.read_parquet(work / "labels.parquet")).metrics
    (work / "ours.json").write_text(json.dumps(out, default=float))


def compare(name: str, ours_daily: pl.DataFrame, ours_metrics: dict, q: pd.DataFrame, qlib_metrics: dict) -> None:
    print(f"\n== {name}: {CONVENTIONS[name]}")
    print(f"{'metric':48s} {'ours':>14s} {'qlib':>14s} {'diff':>11s}")
    worst = 0.0
    for series in SERIES:
        for metric in METRICS:
            a, b = float(ours_metrics[series][metric]), float(qlib_metrics[series][metric])
            worst = max(worst, abs(a - b))
            print(f"{series + '.' + metric:48s} {a:14.8f} {b:14.8f} {a - b:11.2e}")
    print(f"max abs metric diff: {worst:.3e}")
    qd = pl.from_pandas(q.reset_index().rename(columns={"datetime": "qdate"})).with_columns(
        pl.col("qdate").cast(pl.Date).alias("date")
    )
    print(
        f"report days: ours {ours_daily.height} ({ours_daily['date'].min()}..{ours_daily['date'].max()}), "
        f"Qlib {qd.height} ({qd['date'].min()}..{qd['date'].max()})"
    )
    joined = ours_daily.join(qd, on="date", how="full", suffix="_qlib", coalesce=True)
    only = joined.filter(pl.col("return").is_null() | pl.col("return_qlib").is_null())["date"].to_list()
    if only:
        print(f"days on one side only: {len(only)} {only[:5]}")
    both = joined.filter(pl.col("return").is_not_null() & pl.col("return_qlib").is_not_null())
    for col in REPORT_COLUMNS:
        diff = (both[col] - both[f"{col}_qlib"].cast(pl.Float64)).abs().max()
        print(f"daily {col:10s} max abs diff {diff:.3e}")
    holdings = both.filter(pl.col("n_holdings") != pl.col("n_holdings_qlib"))
    first = holdings["date"].min() if holdings.height else None
    print(f"days with a different holding count: {holdings.height} (first: {first})")
    day1 = both.sort("date").row(0, named=True)
    print(
        f"day 1 {day1['date']}: return ours {day1['return']:.3e} qlib {day1['return_qlib']:.3e}, "
        f"turnover ours {day1['turnover']:.3e} qlib {day1['turnover_qlib']:.3e}, bench {day1['bench']:.6f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signal", choices=["reversal", "random"], default="reversal")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2019, 1, 1))
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2020, 12, 31))
    parser.add_argument("--pin-order", action="store_true")
    parser.add_argument("--ours-python", type=Path, default=OUR_PYTHON, help="the project's Python (with DuckDB)")
    parser.add_argument("--ours", type=Path, help=argparse.SUPPRESS)  # internal: run our side on this folder
    args = parser.parse_args()
    if args.ours is not None:
        run_ours(args.ours, args.start, args.end)
        return
    if not (DATA / "calendars" / "day.txt").is_file():
        raise SystemExit(f"real data not found at {DATA}")

    import json
    import subprocess
    import tempfile

    t0 = time.perf_counter()
    bars = read_qlib_bars(DATA, None, args.start - dt.timedelta(days=60), args.end + dt.timedelta(days=10))
    read_seconds = time.perf_counter() - t0
    calendar = np.unique(bars["date"].to_numpy())
    first_score = calendar[np.searchsorted(calendar, np.datetime64(args.start), "left") - 1].item()
    scores = make_scores(bars, member_keys(bars, "csi300"), args.signal, first_score, args.end)
    by_convention = {
        "first_day": scores.filter(pl.col("date") >= args.start),
        "previous_day": scores,
    }
    for name, frame in by_convention.items():
        print(
            f"{name}: {frame.height} scores for {frame['date'].n_unique()} days from {frame['date'].min()} "
            f"({args.signal})"
        )
    print(f"bars read in {read_seconds:.2f}s")

    qlib_runs = {}
    qlib_signal = None
    for name, frame in by_convention.items():
        report, metrics, signal = run_qlib(frame, args.start, args.end, args.pin_order)
        qlib_runs[name] = (report, metrics)
        if qlib_signal is None:  # in-window scores (the IC's input) are the same in both conventions
            qlib_signal = signal

    with tempfile.TemporaryDirectory(prefix="parity_backtest_") as tmp:
        work = Path(tmp)
        bars.write_parquet(work / "bars.parquet")
        for name, frame in by_convention.items():
            frame.write_parquet(work / f"scores_{name}.parquet")
        qlib_signal.pop("labels").write_parquet(work / "labels.parquet")
        command = [str(args.ours_python), __file__, "--ours", tmp, "--start", str(args.start), "--end", str(args.end)]
        subprocess.run(command, check=True, cwd=REPO)
        ours = json.loads((work / "ours.json").read_text())
        ours_daily = {name: pl.read_parquet(work / f"ours_daily_{name}.parquet") for name in CONVENTIONS}

    for name in CONVENTIONS:
        print(
            f"\nbacktest time {name}: ours {ours['seconds'][name]:.2f}s (evaluate_backtest, incl. the bars query), "
            f"Qlib {qlib_runs[name][1]['seconds']:.2f}s"
        )
    for name in CONVENTIONS:
        report, metrics = qlib_runs[name]
        compare(name, ours_daily[name], ours[name], report, metrics)

    print(f"\n== IC (scores in [{args.start}, {args.end}], the same in both conventions)")
    for name, b in qlib_signal.items():
        # float(): Qlib's label is float32, and NumPy 2 would take the difference in float32
        a, b = float(ours["signal"][name]), float(b)
        print(f"{name:48s} {a:14.8f} {b:14.8f} {a - b:11.2e}")


if __name__ == "__main__":
    main()
