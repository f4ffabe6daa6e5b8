"""Benchmark: the expression engine per built-in set and per Alpha158 column group on the real CSI300 data.

    .venv/bin/python bench/bench_expressions.py                          # 2018-01-01 .. 2019-12-31 (+ reach)
    .venv/bin/python bench/bench_expressions.py --start 2010-01-01 --end 2026-12-31
    POLARS_MAX_THREADS=1 .venv/bin/python bench/bench_expressions.py     # one thread
    .venv/bin/python bench/bench_expressions.py --groups RANK,IMAX+IMIN,BETA+RSQR+RESI  # Alpha158 groups

Every CSI300 instrument with data, all history read; each set computes [start, end] and reads the history its
reach needs. Prints wall and CPU seconds per set (CPU seconds are the fairer figure on a shared machine) and the
peak RSS. Against Qlib, and over the whole history, see bench/bench_features.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from bench.bench_features import DATA, peak_rss_gb, read_bars, universe  # noqa: E402
from features import catalog  # noqa: E402
from features.expressions import compute_columns  # noqa: E402

SETS = ("alpha158", "alpha360", "label")


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--start", default="2018-01-01")
    parser.add_argument("--end", default="2019-12-31")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--groups", help="time Alpha158 column groups (names without the window; '+' joins "
                        "groups timed together), expression engine only, best CPU seconds of 3")  # fmt: skip
    args = parser.parse_args()

    names = universe(args.data)
    bars, cal = read_bars(args.data, names)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores, {len(os.sched_getaffinity(0))} usable, load {load}; "
        f"POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS', 'unset')} ({pl.thread_pool_size()} threads)"
    )
    print(f"{len(names)} instruments, {bars.height} bars; output {args.start} .. {args.end}; "
          f"peak RSS after reading {peak_rss_gb():.2f} GB")  # fmt: skip
    if args.groups:
        return time_groups(args.groups.split(","), bars, cal, args.start, args.end)
    wall_total = cpu_total = 0.0
    for name in args.sets.split(","):
        columns = list(catalog.get(name).columns)
        out, wall, cpu = timed(lambda columns=columns: compute_columns(columns, bars, cal, args.start, args.end))
        wall_total, cpu_total = wall_total + wall, cpu_total + cpu
        print(f"  {name:9s} {out.height} rows x {len(columns)}: wall {wall:6.2f}s cpu {cpu:6.2f}s")
        del out
    print(f"TOTAL wall {wall_total:.2f}s cpu {cpu_total:.2f}s; peak RSS {peak_rss_gb():.2f} GB")
    return 0


def time_groups(groups: list[str], bars: pl.DataFrame, cal, start: str, end: str) -> int:
    """CPU seconds per Alpha158 column group (ROC, RANK, ...; fixed costs such as the layout included: time
    ROC, five plain shifts, for that floor)."""
    columns = list(catalog.get("alpha158").columns)
    for group in groups:
        chosen = [(c, e) for c, e in columns if c.rstrip("0123456789") in group.split("+")]
        if not chosen:
            raise SystemExit(f"no Alpha158 column group {group!r}")
        best = min(timed(lambda chosen=chosen: compute_columns(chosen, bars, cal, start, end))[2] for _ in range(3))
        print(f"  {group:16s} {len(chosen):3d} columns: cpu {best:.3f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
