"""How much of a run is Dagster bookkeeping: wall time vs the assets' own compute.

Runs a selection the way ``python -m pipeline materialize`` does (one run on the persistent instance at
DAGSTER_HOME, settings from the PIPELINE_* environment) and prints the run's wall time, the assets' own
compute (their ``seconds`` metadata; for an asset without it, its step start to its first materialization)
and the share outside that compute.

    DAGSTER_HOME=/tmp/dh PIPELINE_WAREHOUSE=/tmp/wh.duckdb .venv/bin/python bench/bench_bookkeeping.py \
        --select 'key:features_alpha158 or key:features_alpha360' --start 2018-01-01 --end 2019-12-31
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import time
from collections import defaultdict


def _compute_seconds(instance, run_id: str) -> tuple[dict[str, float], int]:
    import dagster as dg

    starts: dict[str, float] = {}
    first_mat: dict[str, float] = {}
    seconds: dict[str, float] = {}
    materializations = 0
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materializations += 1
            step = event.step_key
            first_mat.setdefault(step, record.timestamp)
            meta = event.event_specific_data.materialization.metadata
            if "seconds" in meta and step not in seconds:
                seconds[step] = float(meta["seconds"].value)
    out = defaultdict(float)
    for step, first in first_mat.items():
        out[step] = seconds.get(step, first - starts.get(step, first))
    return dict(out), materializations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--select", required=True)
    parser.add_argument("--start", type=dt.date.fromisoformat)
    parser.add_argument("--end", type=dt.date.fromisoformat)
    parser.add_argument("--profile", help="write a cProfile of the run here and print its top entries")
    args = parser.parse_args()

    t0 = time.perf_counter()
    from pipeline.cli import materialize
    from pipeline.instance import persistent_instance

    instance = persistent_instance()
    imported = time.perf_counter() - t0
    profiler = cProfile.Profile() if args.profile else None
    t1 = time.perf_counter()
    if profiler:
        profiler.enable()
    result = materialize(args.select, args.start, args.end, instance=instance)
    if profiler:
        profiler.disable()
    run_wall = time.perf_counter() - t1
    compute, n_mat = _compute_seconds(instance, result.run_id)
    total = sum(compute.values())
    wall = imported + run_wall
    print(f"success={result.success} run={result.run_id} materializations={n_mat}")
    for step, s in sorted(compute.items(), key=lambda kv: -kv[1]):
        print(f"  {step:32s} {s:8.2f} s")
    print(f"wall {wall:.1f} s (imports + instance {imported:.1f} s, run {run_wall:.1f} s)")
    print(f"asset compute {total:.1f} s; outside it {wall - total:.1f} s = {100 * (wall - total) / wall:.0f} % of wall")
    if profiler:
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
