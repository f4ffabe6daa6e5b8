"""Headless command line.

``python -m pipeline materialize --select SELECTION [--start DATE] [--end DATE]`` runs an asset selection
(Dagster's selection syntax) over a date range on the persistent instance, so the run appears in the UI.
``python -m pipeline backtest --scores FILE.parquet`` evaluates any score file (instrument, date, score)
against the configured warehouse: signal metrics and the TopkDropout risk analysis as one JSON object.
``python -m pipeline benchmark`` trains every model configuration for several seeds and prints Qlib's
benchmark table (mean ± std per model), optionally beside Qlib's own implementation.
``python -m pipeline summary`` prints what the warehouse holds.
``python -m pipeline features list|show SET`` prints the feature-set catalog (see ``pipeline.cli_features``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import sys

import dagster as dg

from pipeline import cli_features
from pipeline.forms import add_flags, from_flags
from pipeline.instance import persistent_instance
from pipeline.settings import Settings
from workflow.benchmark_plan import CPU_MAX_EPOCHS, CPU_SEEDS, FULL_SEEDS, default_budget


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    mat = sub.add_parser("materialize", help="materialize an asset selection over a date range")
    mat.add_argument("--select", required=True, help="Dagster asset selection, e.g. '*' or 'group:bars'")
    mat.add_argument("--start", type=_date, help="first date (default: the source's first trading day)")
    mat.add_argument("--end", type=_date, help="last date (default: the source's last trading day)")
    mat.add_argument("--summary", action="store_true", help="print a summary of the warehouse afterwards")
    sub.add_parser("summary", help="print what the warehouse holds")
    bm = sub.add_parser("benchmark", help="Qlib's benchmark table: every model x seeds, mean ± std")
    bm.add_argument("--models", help="comma-separated configurations (default: all sixteen)")
    bm.add_argument("--seeds", help=f"comma-separated seeds (default: {_seeds_text(FULL_SEEDS)} with CUDA, "
                    f"{_seeds_text(CPU_SEEDS)} on the CPU)")  # fmt: skip
    bm.add_argument(
        "--max-epochs",
        type=int,
        help=f"cap on n_epochs, 0 = none (default: 0 with CUDA, {CPU_MAX_EPOCHS} on the CPU)",
    )
    bm.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's own)")
    bm.add_argument("--with-upstream", action="store_true", help="first materialize bars, features, labels, datasets")
    bm.add_argument("--qlib-python", help="a Python with pyqlib: run bench/qlib_reference.py first (dev only)")
    bm.add_argument("--qlib-models", help="configurations Qlib's own code trains (default: the same as --models)")
    bm.add_argument("--qlib-reference", help="directory of Qlib's reference scores to evaluate beside ours")
    bm.add_argument("--skip-training", action="store_true", help="only evaluate --qlib-reference")
    bt = sub.add_parser("backtest", help="signal metrics and TopkDropout backtest of a score file, as JSON")
    bt.add_argument("--scores", required=True, help="parquet file with columns instrument, date, score")
    bt.add_argument(
        "--start",
        type=_date,
        help="first day of the backtest and of the signal analysis (default: the file's first score date; the "
        "first day trades on the scores of the trading day before it if the file has them, else trades nothing)",
    )
    bt.add_argument(
        "--end", type=_date, help="last day of the backtest and of the signal analysis (default: the file's last)"
    )
    bt.add_argument("--benchmark", help="benchmark instrument (default: PIPELINE_BENCHMARK or the source's own)")
    from evaluation.backtest import BACKTEST_WINDOW, BacktestConfig

    add_flags(bt, BacktestConfig(), exclude=BACKTEST_WINDOW)
    cli_features.add_parser(sub)
    return parser


def backtest_scores(args: argparse.Namespace, settings: Settings | None = None) -> dict:
    """The `backtest` command: the same functions the evaluation assets use, on a score file."""
    import polars as pl

    from evaluation.backtest import BACKTEST_WINDOW, BacktestConfig
    from evaluation.scores_file import load_scores, validate_scores
    from pipeline.resources import MarketSourceResource
    from warehouse.feature_store import trading_days
    from warehouse.store import Warehouse
    from workflow.evaluation import evaluate_backtest, evaluate_signal, evaluation_summary, read_labels

    settings = settings or Settings.from_env()
    warehouse = Warehouse(settings.warehouse)
    if not warehouse.table_exists("bars") or not warehouse.table_exists("labels"):
        raise SystemExit(
            f"warehouse {warehouse.path} has no bars or labels yet; run `python -m pipeline materialize "
            "--select 'group:bars or key:labels'` first"
        )
    scores = load_scores(args.scores)
    calendar = trading_days(warehouse)
    # Qlib's workflow: the backtest window is the scores' window (or --start/--end), first day included; the
    # backtest also reads the scores of the trading day before --start, which the first day trades on (Qlib's rule)
    before = [d for d in calendar if args.start and d < args.start]
    lo = before[-1] if before else args.start
    if lo:
        scores = scores.filter(pl.col("date") >= lo)
    if args.end:
        scores = scores.filter(pl.col("date") <= args.end)
    in_window = scores.filter(pl.col("date") >= args.start) if args.start else scores
    if in_window.height == 0:
        raise SystemExit(f"score file {args.scores} has no rows in {args.start}..{args.end}")
    known = warehouse.query("select distinct instrument from bars")["instrument"].to_list()
    validate_scores(scores, known, calendar, where=f"score file {args.scores}")
    benchmark = (
        args.benchmark
        or MarketSourceResource(
            uri=settings.source, universe=settings.universe, benchmark=settings.benchmark
        ).benchmark_instrument()
    )
    config = from_flags(BacktestConfig, args, BacktestConfig(), exclude=BACKTEST_WINDOW)
    window = (args.start or in_window["date"].min(), args.end or in_window["date"].max())
    signal = evaluate_signal(in_window, read_labels(warehouse, *window))
    result = evaluate_backtest(warehouse, scores, benchmark, config, window)
    return evaluation_summary(signal.metrics, result.metrics)


def _seeds_text(seeds: tuple[int, ...]) -> str:
    return ",".join(map(str, seeds))


def upstream_selection() -> str:
    """What the benchmark's models need (``assets.models.handler_upstream``: bars, the benchmark handlers'
    feature and label tables from the catalog, the fitted handlers), as a selection."""
    from assets.models import handler_upstream

    return " or ".join(f"key:{k}" for k in handler_upstream())


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--{what} must be comma-separated integers, got {text!r}") from None


def benchmark(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """The `benchmark` command: optional upstream run, optional Qlib reference run, then the benchmark asset."""
    import subprocess
    from pathlib import Path

    from evaluation.benchmark_table import comparison_markdown, results_markdown
    from models.config import model_config_names
    from models.training import resolve_device
    from pipeline.definitions import build_resources
    from pipeline.resources import SegmentsResource
    from pipeline.settings import REPO_ROOT
    from warehouse.feature_store import trading_days
    from warehouse.store import Warehouse
    from workflow.benchmark import read_results

    settings = settings or Settings.from_env()
    cuda = resolve_device(settings.device) == "cuda"
    models = [m.strip() for m in (args.models or ",".join(model_config_names())).split(",") if m.strip()]
    default_seeds, default_epochs = default_budget(cuda)
    seeds = _int_list(args.seeds, "seeds") if args.seeds else list(default_seeds)
    max_epochs = args.max_epochs if args.max_epochs is not None else default_epochs
    print(
        f"benchmark: models {', '.join(models)}; seeds {seeds}; epochs "
        f"{'capped at ' + str(max_epochs) if max_epochs else 'as configured'}; device "
        f"{'cuda' if cuda else 'cpu'}; warehouse {settings.warehouse}",
        flush=True,
    )
    if args.with_upstream and not materialize(upstream_selection(), None, None, settings).success:
        print("upstream run failed", file=sys.stderr)
        return 1
    reference = args.qlib_reference
    qlib_models = args.qlib_models or ",".join(models)
    if args.qlib_python:
        wh = Warehouse(settings.warehouse)
        seg = build_resources(settings)["segments"]
        assert isinstance(seg, SegmentsResource)
        resolved = seg.resolve(trading_days(wh), rolling=False)
        reference = reference or str(Path(settings.warehouse).parent / "qlib_reference")
        data = settings.source.removeprefix("qlib:")
        cmd = [
            args.qlib_python,
            str(REPO_ROOT / "bench" / "qlib_reference.py"),
            "--data", data,
            "--out", reference,
            "--market", settings.universe or "all",
            "--models", qlib_models,
            "--seeds", ",".join(map(str, seeds)),
            "--threads", str(args.threads),
            "--gpu", "0" if cuda else "-1",
            "--segments", ",".join(f"{a}:{b}" for a, b in (resolved.train, resolved.valid, resolved.test)),
        ]  # fmt: skip
        if max_epochs:
            cmd += ["--max-epochs", str(max_epochs)]
        if "hist" in qlib_models.split(","):
            # Qlib's HIST reads the same concepts as ours: the warehouse's table, as instrument / concept rows.
            Path(reference).mkdir(parents=True, exist_ok=True)
            concepts_csv = Path(reference) / "concepts.csv"
            wh.query("select instrument, concept from concepts order by 1, 2").write_csv(concepts_csv)
            cmd += ["--concepts", str(concepts_csv)]
        print("running Qlib's reference:", " ".join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            print("Qlib's reference run failed", file=sys.stderr)
            return 1
    run_config = {
        "ops": {
            "benchmark_results": {
                "config": {
                    "models": models,
                    "seeds": seeds,
                    "max_epochs": max_epochs,
                    "threads": args.threads,
                    "qlib_reference": str(Path(reference).resolve()) if reference else "",
                    "skip_training": bool(args.skip_training),
                }
            }
        }
    }
    if not materialize("key:benchmark_results", None, None, settings, run_config=run_config).success:
        print("benchmark run failed", file=sys.stderr)
        return 1
    results = read_results(Warehouse(settings.warehouse))
    print(results_markdown(results))
    print()
    print(comparison_markdown(results))
    return 0


def snap_to_calendar(calendar: list[dt.date], start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """The first and last trading days inside [start, end] (default: the whole history); they are partition
    keys. An end past the calendar (a day whose bars are not in yet) is kept when it is a weekday."""
    start = start or calendar[0]
    end = end or calendar[-1]
    if end < start:
        raise SystemExit(f"--end {end} is before --start {start}")
    inside = [d for d in calendar if start <= d <= end]
    if end > calendar[-1] and end.weekday() < 5:
        return (inside[0] if inside else end), end
    if not inside:
        raise SystemExit(f"no trading day of the source between {start} and {end}")
    return inside[0], inside[-1]


def materialize(
    select: str,
    start: dt.date | None,
    end: dt.date | None,
    settings: Settings | None = None,
    instance: dg.DagsterInstance | None = None,
    run_config: dict | None = None,
) -> dg.ExecuteInProcessResult:
    from pipeline.definitions import build_definitions
    from pipeline.resources import open_source_cached

    settings = settings or Settings.from_env()
    defs = build_definitions(settings)
    calendar = open_source_cached(settings.source, settings.on_bad_file).calendar()
    start, end = snap_to_calendar(calendar, start, end)
    selection = dg.AssetSelection.from_string(select)
    repo = defs.get_repository_def()
    asset_graph = repo.asset_graph
    keys = selection.resolve(asset_graph)
    if not keys:
        raise SystemExit(f"selection {select!r} matches no asset")
    partitioned = any(asset_graph.get(k).is_partitioned for k in keys)
    tags = {}
    if partitioned:
        tags = {
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": end.isoformat(),
        }
    tags.update({"pipeline/host": socket.gethostname(), "pipeline/pid": str(os.getpid())})
    instance = instance or persistent_instance()
    release_dead_runs(instance)
    return dg.materialize(
        assets=list(defs.assets or []) + list(defs.asset_checks or []),
        selection=selection,
        resources=defs.resources,
        instance=instance,
        tags=tags,
        run_config=run_config,
    )


def release_dead_runs(instance: dg.DagsterInstance) -> None:
    """Headless runs whose process died (SIGKILL, out of memory) stay STARTED and keep their pool slots, which
    would block every later run: mark them failed and free their slots."""
    host = socket.gethostname()
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING], tags={"pipeline/host": host}
        )
    )
    for run in runs:
        pid = int(run.tags.get("pipeline/pid") or 0)
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        instance.report_run_failed(run, f"process {pid} on {host} no longer exists")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def print_summary(settings: Settings | None = None) -> None:
    from pipeline.summary import warehouse_summary

    print(warehouse_summary(settings or Settings.from_env()))


def silence_known_library_warnings() -> None:
    """The library warnings the project has chosen to live with, silenced by category and message so that the
    terminal shows the run's own log lines; any other warning still prints.

    * Dagster's BetaWarning for ``backfill_policy``: every partitioned asset sets a single-run backfill
      policy on purpose (a range is one run); the parameter is beta in Dagster 1.x and the warning repeats
      once per asset at every definitions load.
    * Dagster's BetaWarning for ``include_sources`` of ``AssetSelection.groups``: Dagster's own selection
      string parser passes it for every ``group:`` term of ``--select``.
    """
    import warnings

    warnings.filterwarnings(
        "ignore", message=r"Parameter `backfill_policy` .* is currently in beta", category=dg.BetaWarning
    )
    warnings.filterwarnings(
        "ignore", message=r"Parameter `include_sources` .* is currently in beta", category=dg.BetaWarning
    )


def main(argv: list[str] | None = None) -> int:
    silence_known_library_warnings()
    args = build_parser().parse_args(argv)
    if args.command == "materialize":
        print(Settings.from_env().profile_note, flush=True)
        result = materialize(args.select, args.start, args.end)
        if not result.success:
            print("run failed", file=sys.stderr)
            return 1
        if args.summary:
            print_summary()
        return 0
    if args.command == "backtest":
        import json

        from evaluation.scores_file import ScoresError

        try:
            summary = backtest_scores(args)
        except (ScoresError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(summary, indent=2))
        return 0
    if args.command == "benchmark":
        return benchmark(args)
    if args.command == "summary":
        print_summary()
        return 0
    if args.command == "features":
        return cli_features.run(args)
    return 2
