"""Benchmark: where the wall time of a features window run goes (issue #11 item 4).

    PIPELINE_SOURCE=qlib:../shared/data/qlib_cn PIPELINE_UNIVERSE=csi300 PIPELINE_BENCHMARK=SH000300 \\
    PIPELINE_WAREHOUSE=/tmp/f/warehouse.duckdb .venv/bin/python bench/bench_feature_window.py \\
        --start 2018-01-01 --end 2019-12-31 [--cli]

Runs on a warehouse that already holds the bars (use a copy: the windows are rewritten). Prints, in one
process: interpreter start (a bare ``python -c pass``), importing the CLI, loading the definitions, opening the
source (calendar), then per feature set the phases of ``build_feature_window`` (read bars, compute, write, the
checks' statistics, as the asset runs it). With ``--cli`` it also times the whole ``python -m pipeline
materialize`` command in a subprocess with a fresh DAGSTER_HOME, so the rest (run setup, Dagster's events) is
the difference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _subprocess_s(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2018, 1, 1))
    ap.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2019, 12, 31))
    ap.add_argument("--sets", default="alpha158,alpha360")
    ap.add_argument("--cli", action="store_true", help="also time the whole CLI command (fresh DAGSTER_HOME)")
    args = ap.parse_args()
    sets = args.sets.split(",")

    rows: list[tuple[str, float]] = []
    rows.append(("interpreter start (python -c pass)", _subprocess_s([sys.executable, "-c", "pass"])))
    rows.append(("python -c 'import pipeline.cli'", _subprocess_s([sys.executable, "-c", "import pipeline.cli"])))

    t0 = time.perf_counter()
    from pipeline.definitions import build_definitions
    from pipeline.resources import open_source_cached
    from pipeline.settings import Settings
    from warehouse.store import Warehouse
    from workflow.features import build_feature_window

    rows.append(("in-process imports (definitions, warehouse)", time.perf_counter() - t0))
    settings = Settings.from_env()
    t0 = time.perf_counter()
    build_definitions(settings)
    rows.append(("build_definitions", time.perf_counter() - t0))
    t0 = time.perf_counter()
    open_source_cached(settings.source, settings.on_bad_file).calendar()
    rows.append(("open source + calendar", time.perf_counter() - t0))

    warehouse = Warehouse(settings.warehouse)
    for name in sets:
        report = build_feature_window(warehouse, name, args.start, args.end, inspect=True)
        rows.append((f"{report.table}: read bars ({report.bars_read} bars)", report.read_s))
        rows.append((f"{report.table}: compute ({report.rows} rows)", report.compute_s))
        rows.append((f"{report.table}: write", report.write_s))
        rows.append((f"{report.table}: check statistics", report.inspect_s))
        rows.append((f"{report.table}: total", report.seconds))

    if args.cli:
        select = " or ".join(f"key:features_{s}" if s != "label" else "key:labels" for s in sets)
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "DAGSTER_HOME": home}
            argv = [sys.executable, "-m", "pipeline", "materialize", "--select", select]
            argv += ["--start", args.start.isoformat(), "--end", args.end.isoformat()]
            rows.append(("whole CLI command (fresh DAGSTER_HOME)", _subprocess_s(argv, env)))

    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v:7.2f} s")
    print(f"load: {os.getloadavg()[0]:.2f} (1-min), cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
