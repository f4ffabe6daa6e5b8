"""The benchmark stage, as Qlib runs its benchmark: every model configuration trained for several seeds on the
train segment, early-stopped on valid, scored on the test segment, and evaluated there (signal analysis and
the TopkDropout backtest with cost); the table (``evaluation.benchmark_table``) has one row per model with each
metric as mean ± std over seeds.

The `benchmark_results` asset and ``python -m pipeline benchmark`` call these functions. Scores that Qlib's
own implementation produced (bench/qlib_reference.py) go through the same evaluation, so a side-by-side row
differs only in the code that trained the model.

Tables: ``benchmark_runs`` (one row per implementation, model, epoch budget and seed), ``benchmark_scores``
(the test scores of every run) and ``benchmark_results`` (the aggregate, rebuilt after every run).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from evaluation.backtest import BacktestConfig
from evaluation.benchmark_table import IMPLEMENTATION, aggregate
from evaluation.scores_file import load_scores, validate_scores
from models.config import base_config_name, get_model_config
from models.scoring import predict
from models.training import resolve_device, train_model
from processing.concepts import Concepts
from processing.config import get_handler_config
from warehouse.feature_store import trading_days
from warehouse.store import Warehouse
from workflow.benchmark_plan import BenchmarkPlan
from workflow.evaluation import evaluate_backtest, evaluate_signal, read_labels
from workflow.handlers import load_handler
from workflow.segments import Segments
from workflow.training import build_model_samples

RUN_KEY = ("implementation", "model", "n_epochs", "seed")


# -- evaluation of one set of test scores -----------------------------------------------------------------
def evaluate_scores(
    warehouse: Warehouse,
    scores: pl.DataFrame,
    benchmark: str | None,
    backtest: BacktestConfig,
    window: tuple[dt.date, dt.date] | None = None,
) -> dict[str, float]:
    """IC / ICIR / Rank IC / Rank ICIR and the with-cost (and without-cost) excess-return risk figures; the
    backtest covers ``window`` (the test segment; default: the scores' dates), first day included."""
    scores = scores.select("instrument", "date", "score").drop_nulls("score").filter(pl.col("score").is_finite())
    if scores.height == 0:
        raise ValueError("benchmark: the run produced no finite test score")
    lo, hi = scores["date"].min(), scores["date"].max()
    signal = evaluate_signal(scores, read_labels(warehouse, lo, hi)).metrics
    result = evaluate_backtest(warehouse, scores, benchmark, backtest, window).metrics
    with_cost, without = result["excess_return_with_cost"], result["excess_return_without_cost"]
    out = {k: float(signal[k]) for k in ("ic", "icir", "rank_ic", "rank_icir")}
    out.update({k: float(with_cost[k]) for k in ("annualized_return", "information_ratio", "max_drawdown")})
    out.update(
        {
            "annualized_return_no_cost": float(without["annualized_return"]),
            "information_ratio_no_cost": float(without["information_ratio"]),
            "max_drawdown_no_cost": float(without["max_drawdown"]),
        }
    )
    return out


# -- storage ----------------------------------------------------------------------------------------------
def store_run(warehouse: Warehouse, row: dict[str, Any], scores: pl.DataFrame) -> None:
    """One run's row and its test scores (each replacing the same run key), then the refreshed aggregate."""
    where = {k: row[k] for k in RUN_KEY}
    keyed = scores.select(
        *(pl.lit(row[k]).alias(k) for k in RUN_KEY),
        pl.col("instrument").cast(pl.Utf8),
        pl.col("date").cast(pl.Date),
        pl.col("score").cast(pl.Float64),
    ).with_columns(pl.col("n_epochs").cast(pl.Int64), pl.col("seed").cast(pl.Int64))
    warehouse.replace("benchmark_scores", keyed, where=where, key=(*RUN_KEY, "instrument", "date"))
    warehouse.replace("benchmark_runs", pl.DataFrame([row]), where=where, key=RUN_KEY)
    warehouse.replace("benchmark_results", aggregate(read_runs(warehouse)))


def read_runs(warehouse: Warehouse) -> pl.DataFrame:
    if not warehouse.table_exists("benchmark_runs"):
        return pl.DataFrame()
    return warehouse.query("select * from benchmark_runs order by implementation, model, n_epochs, seed")


def read_results(warehouse: Warehouse) -> pl.DataFrame:
    if not warehouse.table_exists("benchmark_results"):
        return pl.DataFrame()
    return warehouse.query("select * from benchmark_results order by model, implementation desc, n_epochs")


# -- the runs ---------------------------------------------------------------------------------------------
def _log(log: Callable[[str], Any] | None, message: str) -> None:
    if log is not None:
        log(message)


def run_benchmark(
    warehouse: Warehouse,
    plan: BenchmarkPlan,
    segments: Segments,
    benchmark: str | None,
    backtest: BacktestConfig | None = None,
    log: Callable[[str], Any] | None = None,
    concepts: Concepts | None = None,
) -> list[dict[str, Any]]:
    """Train, score and evaluate every (model, seed) of ``plan``; each run is stored as soon as it ends, so an
    interrupted benchmark keeps the runs it finished. Returns the run rows.

    A graph model (GATs, HIST, IGMTF) starts from the same seed's run of its base configuration, which the plan
    must hold before it (as the default order does: lstm first); HIST needs ``concepts``."""
    backtest = backtest or BacktestConfig()
    device = resolve_device(plan.device)
    if plan.threads:
        torch.set_num_threads(plan.threads)
    rows = []
    for number, name in enumerate(plan.models):  # checked before anything trains
        base_name = base_config_name(get_model_config(name))
        if base_name is not None and base_name not in plan.models[:number]:
            raise ValueError(f"benchmark {name}: it starts from a trained {base_name!r}; put {base_name} before it")
    trained: dict[tuple[str, int], dict[str, torch.Tensor]] = {}  # (configuration, seed) -> weights
    for name in plan.models:
        base = plan.config(name, plan.seeds[0])
        base_name = base_config_name(base)
        handler_version, _, fitted = load_handler(warehouse, base.handler)
        t0 = time.perf_counter()
        samples = build_model_samples(
            warehouse, base, fitted, {"train": segments.train, "valid": segments.valid, "test": segments.test}
        )
        prep_s = time.perf_counter() - t0
        test = samples["test"]
        if test.n_samples == 0:
            raise ValueError(f"benchmark {name}: the test segment {segments.test} has no samples")
        _log(log, f"{name}: samples train {samples['train'].n_samples:,}, valid {samples['valid'].n_samples:,}, "
             f"test {test.n_samples:,} built in {prep_s:.1f} s")  # fmt: skip
        for seed in plan.seeds:
            config = plan.config(name, seed)
            result = train_model(
                config,
                samples["train"],
                samples["valid"],
                device=device,
                log=log,
                base_state=trained.get((base_name, seed)) if base_name else None,
                concepts=concepts,
            )
            trained[(name, seed)] = result.model.state_dict()
            t1 = time.perf_counter()
            values = predict(
                result.model,
                test,
                device=device,
                batch_size=config.batch_size,
                config=config,
                concepts=concepts,
                train_samples=samples["train"],
            )
            predict_s = time.perf_counter() - t1
            scores = pl.DataFrame(
                {
                    "instrument": test.instruments.astype(str),
                    "date": test.dates.astype("datetime64[D]"),
                    "score": np.asarray(values, dtype=np.float64),
                }
            )
            metrics = evaluate_scores(warehouse, scores, benchmark, backtest, segments.test)
            row = {
                "implementation": IMPLEMENTATION,
                "model": name,
                "dataset": get_handler_config(config.handler).title,
                "n_epochs": config.n_epochs,
                "seed": seed,
                **metrics,
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch,
                "train_s": float(result.wall_time_s),
                "predict_s": float(predict_s),
                "samples_per_s": float(result.samples_per_s),
                "device": result.device,
                "threads": torch.get_num_threads() if result.device == "cpu" else 0,
                "n_train": result.n_train,
                "n_valid": result.n_valid,
                "n_test": scores.height,
                "test_start": segments.test[0],
                "test_end": segments.test[1],
                "handler_version": handler_version,
                "config": json.dumps(config.to_dict()),
                "finished_at": dt.datetime.now(),
            }
            store_run(warehouse, row, scores)
            rows.append(row)
            _log(log, f"{name} seed {seed}: IC {metrics['ic']:.4f}, Rank IC {metrics['rank_ic']:.4f}, "
                 f"IR {metrics['information_ratio']:.2f}, train {result.wall_time_s:.0f} s "
                 f"({result.epochs_run} epochs, best {result.best_epoch})")  # fmt: skip
    return rows


def evaluate_reference(
    warehouse: Warehouse,
    directory: str | Path,
    segments: Segments,
    benchmark: str | None,
    backtest: BacktestConfig | None = None,
    log: Callable[[str], Any] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate the scores of bench/qlib_reference.py (``runs.jsonl`` and one parquet file per run) exactly as
    our own runs, and store them under the implementation that produced them (e.g. ``qlib 0.9.7``)."""
    directory = Path(directory)
    manifest = directory / "runs.jsonl"
    if not manifest.is_file():
        raise ValueError(f"Qlib reference directory {directory}: no runs.jsonl (run bench/qlib_reference.py first)")
    backtest = backtest or BacktestConfig()
    known = warehouse.query("select distinct instrument from bars")["instrument"].to_list()
    calendar = trading_days(warehouse)
    rows = []
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            run = json.loads(line)
            path = directory / run["scores"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{manifest}, line {number}: not a run record ({exc})") from None
        if not path.is_file():
            raise ValueError(f"{manifest}, line {number}: score file {path} is missing")
        # The same checks as `python -m pipeline backtest --scores`: columns, unique keys, known instruments, days.
        scores = load_scores(path).filter(pl.col("date").is_between(*segments.test))
        validate_scores(scores, known, calendar, where=f"{manifest}, line {number}: score file {path}")
        metrics = evaluate_scores(warehouse, scores, benchmark, backtest, segments.test)
        config = get_model_config(run["model"])
        cuda = str(run["device"]).startswith("cuda")
        row = {
            "implementation": run["implementation"],
            "model": run["model"],
            "dataset": get_handler_config(config.handler).title,
            "n_epochs": int(run["params"]["n_epochs"]),
            "seed": int(run["seed"]),
            **metrics,
            "epochs_run": int(run["epochs_run"]),
            "best_epoch": int(run["best_epoch"] or 0),
            "train_s": float(run["train_s"]),
            "predict_s": float(run["predict_s"]),
            "samples_per_s": math.nan,
            "device": "cuda" if cuda else "cpu",
            "threads": 0 if cuda else int(run["threads"]),
            "n_train": 0,
            "n_valid": 0,
            "n_test": scores.height,
            "test_start": segments.test[0],
            "test_end": segments.test[1],
            "handler_version": run.get("qlib_class", ""),
            "config": json.dumps(run["params"]),
            "finished_at": dt.datetime.fromisoformat(run["finished_at"]),
        }
        store_run(warehouse, row, scores)
        rows.append(row)
        _log(log, f"{row['implementation']} {row['model']} seed {row['seed']}: IC {metrics['ic']:.4f}")
    return rows
