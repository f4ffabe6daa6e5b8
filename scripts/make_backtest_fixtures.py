"""Generate the committed backtest / signal-analysis fixtures from Qlib itself (dev only).

    /work/qlibenv/bin/python scripts/make_backtest_fixtures.py

Builds a small RANDOM market (30 stocks x 80 days with limit-up / limit-down days, suspensions both as missing
rows and as forward-filled volume-0 rows, late listings, delistings and factor jumps), writes it as a Qlib binary
directory in a temporary folder, runs Qlib 0.9's TopkDropoutStrategy backtest and ``calc_ic`` /
``calc_long_short_return`` on random scores, and stores inputs and Qlib's outputs under
tests/fixtures/evaluation/. Nothing here comes from real market data.

Each scenario runs under the two ways the scores can meet the backtest window [start_date, end_date]:

* previous day (``qlib_report_<scenario>.parquet``): the scores start one trading day before start_date, so the
  first day already trades on them;
* first day (``qlib_report_first_day_<scenario>.parquet``): Qlib's workflow, where predictions and backtest
  cover the same test segment: the scores are those dated in [start_date, end_date], so the first day has no
  previous-day score, trades nothing and is still a report row (return 0, the benchmark's return in the excess).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT = REPO / "tests" / "fixtures" / "evaluation"
FIELDS = ["open", "high", "low", "close", "volume", "factor", "change"]
BENCH = "SH000300"
SEED = 20240501
N_STOCKS = 30
N_DAYS = 80

SCENARIOS = {
    # Qlib's benchmark settings on a small book
    "default": {
        "market": "base",
        "strategy": {"topk": 5, "n_drop": 2},
        "account": 1_000_000.0,
        "exchange": {},
    },
    # cash-limited buys (risk_degree 1), minimum fees, hold_thresh 2, only_tradable, trades allowed at the "wrong" limit
    "stress": {
        "market": "base",
        "strategy": {
            "topk": 5,
            "n_drop": 2,
            "hold_thresh": 2,
            "only_tradable": True,
            "forbid_all_trade_at_limit": False,
            "risk_degree": 1.0,
        },
        "account": 30_000.0,
        "exchange": {},
    },
    # a row without factor switches off lot rounding; the deal price is the open (missing opens fall back)
    "adjusted_open": {
        "market": "no_factor",
        "strategy": {"topk": 6, "n_drop": 3},
        "account": 500_000.0,
        "exchange": {"deal_price": "open"},
    },
    # no lot rounding and risk_degree 1: the last buys of a day run out of cash and are cut to what it pays for
    "cash_limited": {
        "market": "no_factor",
        "strategy": {"topk": 4, "n_drop": 2, "risk_degree": 1.0},
        "account": 20_000.0,
        "exchange": {},
    },
}


def make_calendar(rng: np.random.Generator) -> list[dt.date]:
    days = pd.bdate_range("2021-01-04", periods=N_DAYS + 6).date.tolist()
    holidays = set(rng.choice(np.arange(5, len(days) - 5), size=6, replace=False).tolist())
    return [d for k, d in enumerate(days) if k not in holidays][:N_DAYS]


def make_market(rng: np.random.Generator, n_days: int) -> dict[str, dict[str, np.ndarray]]:
    """Per instrument: float32 arrays over the whole calendar, NaN where there is no row."""
    names = [f"SH6000{k:02d}" for k in range(N_STOCKS // 2)] + [
        f"SZ0000{k:02d}" for k in range(N_STOCKS - N_STOCKS // 2)
    ]
    market: dict[str, dict[str, np.ndarray]] = {}
    for n, name in enumerate(names):
        first = int(rng.integers(8, 30)) if n % 10 == 3 else 0  # late listings
        last = int(rng.integers(55, 70)) if n % 10 == 7 else n_days - 1  # delistings
        ret = np.clip(rng.normal(0.0, 0.025, n_days), -0.09, 0.09)
        event = rng.random(n_days)
        ret[event < 0.05] = 0.1  # limit up
        ret[(event >= 0.05) & (event < 0.10)] = -0.1  # limit down
        close = rng.uniform(5, 60) * np.cumprod(1 + ret)
        factor = np.ones(n_days)
        if n % 3 == 0:
            jump = int(rng.integers(10, n_days - 10))
            factor[jump:] *= rng.uniform(1.05, 1.6)
        close = close * factor[0]  # adjusted price, continuous through factor jumps
        change = np.empty(n_days)
        change[0] = np.nan
        change[1:] = close[1:] / close[:-1] - 1
        volume = rng.uniform(1e5, 1e7, n_days)
        # forward-filled suspension: previous prices, volume 0, change 0
        ffill = (event >= 0.10) & (event < 0.14)
        ffill[0] = False
        for k in np.flatnonzero(ffill):
            close[k:] *= close[k - 1] / close[k]
            change[k] = 0.0
            volume[k] = 0.0
            if k + 1 < n_days:
                change[k + 1] = close[k + 1] / close[k] - 1
        open_ = close * rng.uniform(0.97, 1.03, n_days)
        open_[ffill] = close[ffill]
        data = {
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": volume,
            "factor": factor,
            "change": change,
        }
        # missing-row suspensions (2-4 days) and the listing window
        gone = np.zeros(n_days, dtype=bool)
        for start in rng.choice(np.arange(first + 2, last - 4), size=2, replace=False):
            gone[start : start + int(rng.integers(2, 5))] = True
        gone[:first] = True
        gone[last + 1 :] = True
        market[name] = {k: np.where(gone, np.nan, v).astype(np.float32) for k, v in data.items()}
        market[name]["change"][first] = np.nan  # first listed day: no previous close
    # exact float32(0.095) changes: at the limit for Qlib's float32 comparison
    for name, day in (("SH600004", 20), ("SZ000005", 33)):
        market[name]["change"][day] = np.float32(0.095)
        market[name]["change"][day + 1] = np.float32(-0.095)
    bench = 3000 * np.cumprod(1 + rng.normal(0.0, 0.012, n_days))
    market[BENCH] = {f: np.full(n_days, np.nan, dtype=np.float32) for f in FIELDS}
    market[BENCH]["close"] = bench.astype(np.float32)
    market[BENCH]["open"] = bench.astype(np.float32)
    market[BENCH]["high"] = bench.astype(np.float32)
    market[BENCH]["low"] = bench.astype(np.float32)
    market[BENCH]["volume"] = np.full(n_days, 1e9, dtype=np.float32)
    market[BENCH]["factor"] = np.ones(n_days, dtype=np.float32)
    market[BENCH]["change"][1:] = (bench[1:] / bench[:-1] - 1).astype(np.float32)
    market[BENCH]["close"][41] = np.nan  # a missing benchmark close: NaN return twice, 0 in the report
    return market


def no_factor_variant(market: dict[str, dict[str, np.ndarray]], rng: np.random.Generator) -> dict:
    variant = {name: {f: v.copy() for f, v in fields.items()} for name, fields in market.items()}
    variant["SZ000010"]["factor"][50] = np.nan
    for name in ("SH600001", "SH600002", "SZ000001"):
        days = rng.choice(np.arange(5, N_DAYS - 5), size=6, replace=False)
        variant[name]["open"][days] = np.nan
    return variant


def write_qlib_dir(root: Path, calendar: list[dt.date], market: dict[str, dict[str, np.ndarray]]) -> None:
    (root / "calendars").mkdir(parents=True)
    (root / "instruments").mkdir()
    (root / "calendars" / "day.txt").write_text("".join(f"{d}\n" for d in calendar))
    spans = []
    for name, fields in market.items():
        have = np.flatnonzero(~np.isnan(fields["close"]) | ~np.isnan(fields["volume"]))
        first, last = int(have[0]), int(have[-1])
        folder = root / "features" / name.lower()
        folder.mkdir(parents=True)
        for field, values in fields.items():
            np.concatenate([[np.float32(first)], values[first : last + 1]]).astype("<f4").tofile(
                folder / f"{field}.day.bin"
            )
        spans.append(f"{name}\t{calendar[first]}\t{calendar[last]}\n")
    (root / "instruments" / "all.txt").write_text("".join(spans))


def bars_frame(calendar: list[dt.date], market: dict[str, dict[str, np.ndarray]]) -> pl.DataFrame:
    """The rows a reader of the Qlib directory sees: days where any price field is present."""
    parts = []
    for name, fields in market.items():
        frame = pl.DataFrame(
            {"instrument": name, "date": calendar, **{f: fields[f].astype(np.float64) for f in FIELDS}}
        )
        parts.append(frame.filter(~pl.all_horizontal(pl.col("open", "close", "volume").is_nan())))
    return pl.concat(parts).sort("instrument", "date")


def make_scores(rng: np.random.Generator, calendar: list[dt.date], bars: pl.DataFrame) -> pl.DataFrame:
    listed = bars.select("instrument", "date").filter(pl.col("instrument") != BENCH)
    # a name that the market does not know at all: it can be picked but never traded
    extra = pl.DataFrame({"instrument": "SH999999", "date": calendar}).with_columns(pl.col("date").cast(pl.Date))
    keys = pl.concat([listed, extra]).sort("date", "instrument")
    scores = keys.with_columns(pl.Series("score", rng.normal(0.0, 1.0, keys.height)))
    keep = rng.random(keys.height) > 0.05
    scores = scores.filter(pl.Series(keep))
    nan_mask = rng.random(scores.height) < 0.02
    scores = scores.with_columns(
        pl.when(pl.Series(nan_mask)).then(float("nan")).otherwise(pl.col("score")).alias("score")
    )
    # one day without any score: no orders the next day
    return scores.filter(pl.col("date") != calendar[40])


def qlib_series(scores: pl.DataFrame) -> pd.Series:
    frame = scores.to_pandas()
    frame["datetime"] = pd.to_datetime(frame["date"])
    return frame.set_index(["datetime", "instrument"])["score"].sort_index()


def run_qlib_backtest(pred: pd.Series, start: dt.date, end: dt.date, scenario: dict) -> tuple[pd.DataFrame, dict]:
    from qlib.backtest import backtest
    from qlib.backtest.executor import SimulatorExecutor
    from qlib.contrib.evaluate import risk_analysis
    from qlib.contrib.strategy import TopkDropoutStrategy

    strategy = TopkDropoutStrategy(signal=pred, **scenario["strategy"])
    executor = SimulatorExecutor(time_per_step="day", generate_portfolio_metrics=True)
    exchange = {
        "freq": "day",
        "limit_threshold": 0.095,
        "deal_price": "close",
        "open_cost": 0.0005,
        "close_cost": 0.0015,
        "min_cost": 5,
        **scenario["exchange"],
    }
    portfolio, _ = backtest(
        start_time=pd.Timestamp(start),
        end_time=pd.Timestamp(end),
        strategy=strategy,
        executor=executor,
        benchmark=BENCH,
        account=scenario["account"],
        exchange_kwargs=exchange,
    )
    report, positions = portfolio["1day"]
    report = report.copy()
    report["n_holdings"] = [len(positions[t].get_stock_list()) for t in report.index]
    metrics = {
        "excess_return_without_cost": risk_analysis(report["return"] - report["bench"])["risk"].to_dict(),
        "excess_return_with_cost": risk_analysis(report["return"] - report["bench"] - report["cost"])["risk"].to_dict(),
    }
    return report, metrics


def report_frame(report: pd.DataFrame) -> pl.DataFrame:
    out = report.reset_index().rename(columns={"datetime": "date"})
    out["date"] = pd.to_datetime(out["date"]).dt.date
    cols = ["date", "account", "return", "total_turnover", "turnover", "total_cost", "cost", "value", "cash", "bench"]
    return pl.from_pandas(out[cols + ["n_holdings"]].astype({c: "float64" for c in cols[1:]}))


def run_signal_analysis(pred: pd.Series, start: dt.date, end: dt.date) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    from qlib.contrib.eva.alpha import calc_ic, calc_long_short_return
    from qlib.data import D

    label = D.features(D.instruments("all"), ["Ref($close, -2)/Ref($close, -1) - 1"], start, end)
    label.columns = ["LABEL0"]
    label = label.swaplevel().sort_index()["LABEL0"]
    label = label[label.index.get_level_values("instrument") != BENCH]
    pred = pred[
        (pred.index.get_level_values(0) >= pd.Timestamp(start)) & (pred.index.get_level_values(0) <= pd.Timestamp(end))
    ]
    ic, ric = calc_ic(pred, label)
    long_short, long_avg = calc_long_short_return(pred, label)
    daily = pd.DataFrame({"ic": ic, "rank_ic": ric, "long_short": long_short, "long_avg": long_avg})
    daily.index = pd.to_datetime(daily.index).date
    daily = pl.from_pandas(daily.rename_axis("date").reset_index())
    metrics = {
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
    return pl.from_pandas(labels[["instrument", "date", "LABEL0"]]), daily, {k: float(v) for k, v in metrics.items()}


def pin_holdings_order(position_cls: type) -> None:
    """Make Qlib list holdings in name order instead of set order.

    Qlib returns ``list(set(...))``, whose order follows Python's per-process string hashing. It decides which
    unscored holdings are dropped first on days when no new names are picked (pandas' Index.union then keeps
    that order), so unpinned Qlib can give different books for different PYTHONHASHSEED values. Name order is
    the rule evaluation/topk_dropout.py implements; nothing else in Qlib's logic is touched.
    """
    reserved = {"cash", "now_account_value", "cash_delay"}
    position_cls.get_stock_list = lambda self: sorted(set(self.position) - reserved)


def run_qlib(work: Path, out: Path) -> None:
    """Child process: Qlib's outputs for every scenario, written to ``out`` (inputs read from ``work``)."""
    import qlib
    from qlib.backtest.position import Position

    pin_holdings_order(Position)
    spec = json.loads((work / "spec.json").read_text())
    calendar = [dt.date.fromisoformat(d) for d in spec["calendar"]]
    start, end = dt.date.fromisoformat(spec["start_date"]), dt.date.fromisoformat(spec["end_date"])
    pred = qlib_series(pl.read_parquet(work / "scores.parquet"))
    # Qlib's workflow: the predictions of the test segment, backtested over that same segment
    days = pred.index.get_level_values("datetime")
    test_segment = pred[(days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))]
    out.mkdir(parents=True)
    results: dict = {"scenarios": {}, "first_day": {}}
    for market_name in ("base", "no_factor"):
        qlib.init(
            provider_uri=str(work / market_name), region="cn", expression_cache=None, dataset_cache=None, kernels=1
        )
        if market_name == "base":
            labels, daily, results["signal_metrics"] = run_signal_analysis(pred, calendar[1], calendar[-3])
            labels.write_parquet(out / "labels.parquet", compression="zstd")
            daily.write_parquet(out / "qlib_signal_daily.parquet", compression="zstd")
        for name, scenario in SCENARIOS.items():
            if scenario["market"] == market_name:
                report, metrics = run_qlib_backtest(pred, start, end, scenario)
                report_frame(report).write_parquet(out / f"qlib_report_{name}.parquet", compression="zstd")
                results["scenarios"][name] = {**scenario, "metrics": metrics}
                report, metrics = run_qlib_backtest(test_segment, start, end, scenario)
                report_frame(report).write_parquet(out / f"qlib_report_first_day_{name}.parquet", compression="zstd")
                results["first_day"][name] = {"metrics": metrics}
    (out / "results.json").write_text(json.dumps(results))


def same_outputs(a: Path, b: Path) -> list[str]:
    """Scenarios whose Qlib report differs (beyond float noise) between two runs."""
    bad = []
    for name in [*SCENARIOS, *(f"first_day_{n}" for n in SCENARIOS)]:
        ra, rb = (pl.read_parquet(p / f"qlib_report_{name}.parquet") for p in (a, b))
        if not (ra["n_holdings"].equals(rb["n_holdings"]) and np.allclose(ra["account"], rb["account"], rtol=1e-12)):
            bad.append(name)
    return bad


def main() -> None:
    rng = np.random.default_rng(SEED)
    calendar = make_calendar(rng)
    base = make_market(rng, len(calendar))
    markets = {"base": base, "no_factor": no_factor_variant(base, rng)}
    bars = {name: bars_frame(calendar, m) for name, m in markets.items()}
    scores = make_scores(rng, calendar, bars["base"])
    start, end = calendar[1], calendar[-3]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, market in markets.items():
            write_qlib_dir(work / name, calendar, market)
        scores.write_parquet(work / "scores.parquet")
        spec = {"calendar": [str(d) for d in calendar], "start_date": str(start), "end_date": str(end)}
        (work / "spec.json").write_text(json.dumps(spec))
        # with the holdings order pinned, Qlib's result must not depend on the hash seed: check on two seeds
        runs = []
        for hash_seed in ("0", "1"):
            out = work / f"out_{hash_seed}"
            env = {**os.environ, "PYTHONHASHSEED": hash_seed}
            subprocess.run([sys.executable, __file__, "--qlib", str(work), str(out)], check=True, env=env)
            runs.append(out)
        unstable = sorted({n for other in runs[1:] for n in same_outputs(runs[0], other)})
        if unstable:
            raise SystemExit(f"Qlib's result depends on the hash seed in scenarios {unstable}; change the market")
        OUT.mkdir(parents=True, exist_ok=True)
        for name, frame in bars.items():
            frame.write_parquet(OUT / f"bars_{name}.parquet", compression="zstd")
        scores.write_parquet(OUT / "scores.parquet", compression="zstd")
        for path in runs[0].glob("*.parquet"):
            shutil.copyfile(path, OUT / path.name)
        results = json.loads((runs[0] / "results.json").read_text())
    manifest = {"start_date": str(start), "end_date": str(end), "benchmark": BENCH, **results}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--qlib":
        run_qlib(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
