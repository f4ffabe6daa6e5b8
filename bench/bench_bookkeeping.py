"""How much of a command-line run is Dagster bookkeeping: wall time vs the assets' own work.

Runs ``python -m pipeline ARGS`` as a subprocess (the user's command, interpreter start included) on the
instance at DAGSTER_HOME with the PIPELINE_* environment, then reads the run(s) it made from the event log and
prints, per step, the step's wall time and the asset's own work: its ``seconds`` metadata where it logs one
(bars, features, labels, scores), else the step's start to its first materialization or check evaluation (the
asset body, before Dagster records the result). Everything else is outside the assets' own work: interpreter
start and imports, loading the definitions, run set-up, the event log writes, the console log. That share is
robust to a loaded machine (the assets' work slows down with it).

    DAGSTER_HOME=/tmp/dh PIPELINE_WAREHOUSE=/tmp/wh.duckdb .venv/bin/python bench/bench_bookkeeping.py \\
        materialize --select 'group:features' --start 2018-01-01 --end 2019-12-31
    .venv/bin/python bench/bench_bookkeeping.py materialize --select '* and not group:benchmark'   # make run
    .venv/bin/python bench/bench_bookkeeping.py --repo /tmp/old-export materialize ...   # another checkout's CLI
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass
class Step:
    key: str
    wall: float = 0.0
    own: float = 0.0
    events: int = 0


def _steps(instance, run_id: str) -> tuple[dict[str, Step], tuple[float, float], int]:
    import dagster as dg

    T = dg.DagsterEventType
    starts: dict[str, float] = {}
    steps: dict[str, Step] = {}
    first_result: dict[str, float] = {}
    seconds: dict[str, float] = {}
    run_start = run_end = None
    n = 0
    for record in instance.all_logs(run_id):
        n += 1
        event = record.dagster_event
        if event is None:
            continue
        kind, key = event.event_type, event.step_key
        if kind == T.RUN_START:
            run_start = record.timestamp
        elif kind in (T.RUN_SUCCESS, T.RUN_FAILURE):
            run_end = record.timestamp
        if key is None:
            continue
        step = steps.setdefault(key, Step(key))
        step.events += 1
        if kind == T.STEP_START:
            starts[key] = record.timestamp
        elif kind in (T.STEP_SUCCESS, T.STEP_FAILURE) and key in starts:
            step.wall = record.timestamp - starts[key]
        elif kind in (T.ASSET_MATERIALIZATION, T.ASSET_CHECK_EVALUATION):
            first_result.setdefault(key, record.timestamp)
            if kind == T.ASSET_MATERIALIZATION and key not in seconds:
                meta = event.event_specific_data.materialization.metadata
                if "seconds" in meta:
                    seconds[key] = float(meta["seconds"].value)
    for key, step in steps.items():
        if key in seconds:
            step.own = seconds[key]
        elif key in first_result and key in starts:
            step.own = first_result[key] - starts[key]
    return steps, (run_start or 0.0, run_end or 0.0), n


def main() -> None:
    argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    repo = REPO
    if argv[0] == "--repo":  # run another checkout's CLI (e.g. an export of an older commit, for "before")
        repo, argv = Path(argv[1]).resolve(), argv[2:]
    if repo == REPO:
        from pipeline.instance import ensure_dagster_home

        ensure_dagster_home()  # the instance as the CLI will find it (dagster.yaml written or upgraded)
    else:
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    import dagster as dg

    instance = dg.DagsterInstance.get()
    before = {r.run_id for r in instance.get_runs()}
    load = os.getloadavg()
    launched = time.time()
    done = subprocess.run([sys.executable, "-m", "pipeline", *argv], cwd=repo, env=os.environ.copy())
    ended = time.time()
    wall = ended - launched
    load_after = os.getloadavg()
    runs = [r for r in reversed(instance.get_runs()) if r.run_id not in before]
    own_total = in_runs = 0.0
    first_start = last_end = None
    print(f"\n$ python -m pipeline {' '.join(argv)}  (exit {done.returncode})")
    for run in runs:
        steps, (start, end), n_events = _steps(instance, run.run_id)
        first_start = start if first_start is None else min(first_start, start)
        last_end = end if last_end is None else max(last_end, end)
        in_runs += end - start
        print(f"run {run.run_id[:8]}: {end - start:.1f} s from RUN_START to its end, {n_events} events")
        print(f"  {'step':34s} {'wall s':>8s} {'own s':>8s} {'outside':>8s} {'events':>7s}")
        for step in sorted(steps.values(), key=lambda s: -s.wall):
            print(f"  {step.key:34s} {step.wall:8.2f} {step.own:8.2f} {step.wall - step.own:8.2f} {step.events:7d}")
            own_total += step.own
    outside = wall - own_total
    bookkeeping = in_runs - own_total  # inside the runs, not the assets' work: Dagster's events, run set-up
    before_run = (first_start or ended) - launched  # interpreter, imports, definitions, instance
    after_run = ended - (last_end or ended)  # the summary, if asked for, and interpreter exit
    print(
        f"wall {wall:.1f} s = before the run {before_run:.1f} s + runs {in_runs:.1f} s + after {after_run:.1f} s; "
        f"assets' own work {own_total:.1f} s"
    )
    print(
        f"outside the assets' own work {outside:.1f} s = {100 * outside / wall:.0f} % of wall; of it Dagster's "
        f"bookkeeping inside the runs {bookkeeping:.1f} s = {100 * bookkeeping / wall:.0f} % of wall"
    )
    print(f"load average {load[0]:.2f} before, {load_after[0]:.2f} after")


if __name__ == "__main__":
    main()
