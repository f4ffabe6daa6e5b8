"""Benchmark: the expression engine (``features.expressions.compute_columns``) against the numpy engine
(``features.registry.compute_features``) on the real CSI300 data, with a cell-by-cell comparison.

    .venv/bin/python bench/bench_expressions.py                          # 2018-01-01 .. 2019-12-31 (+ reach)
    .venv/bin/python bench/bench_expressions.py --start 2010-01-01 --end 2026-12-31
    POLARS_MAX_THREADS=1 .venv/bin/python bench/bench_expressions.py     # one thread
    .venv/bin/python bench/bench_expressions.py --groups RANK,IMAX+IMIN,BETA+RSQR+RESI  # Alpha158 groups

Both engines get the same bars (every CSI300 instrument with data, all history, as a LazyFrame-ready frame)
and the same [start, end]; each reads the history its reach needs; the numpy engine runs on as many threads
as Polars has. Alpha158, Alpha360 and LABEL0 are Qlib's
expression texts (``tests/features/expressions/qlib_sets.py``). Prints wall and CPU seconds per set for both
engines, then the fraction of cells that agree (1e-4 relative / 1e-6 absolute, as tests/features use).
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
from features import compute_features  # noqa: E402
from features.compare import compare_frames, row_mismatch, summarize  # noqa: E402
from features.expressions import compute_columns  # noqa: E402
from tests.features.expressions.qlib_sets import LABEL, alpha158, alpha360  # noqa: E402

SETS = {"alpha158": alpha158, "alpha360": alpha360, "label": lambda: LABEL}


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
    parser.add_argument("--no-compare", action="store_true", help="time only")
    parser.add_argument("--only", choices=["numpy", "expressions"], help="run one engine (its own peak RSS)")
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
    threads = pl.thread_pool_size()  # the numpy engine gets as many threads as Polars
    totals = {"numpy": [0.0, 0.0], "polars": [0.0, 0.0]}
    for name in args.sets.split(","):
        columns = SETS[name]()
        ref, ours, w0, c0, w1, c1 = None, None, 0.0, 0.0, 0.0, 0.0
        if args.only != "expressions":
            ref, w0, c0 = timed(
                lambda name=name: compute_features(name, bars, cal, args.start, args.end, n_threads=threads)
            )
        if args.only != "numpy":
            ours, w1, c1 = timed(lambda columns=columns: compute_columns(columns, bars, cal, args.start, args.end))
        rows = (ours if ours is not None else ref).height
        totals["numpy"][0] += w0
        totals["numpy"][1] += c0
        totals["polars"][0] += w1
        totals["polars"][1] += c1
        print(f"  {name:9s} {rows} rows x {len(columns)}: numpy wall {w0:6.2f}s cpu {c0:6.2f}s | "
              f"expressions wall {w1:6.2f}s cpu {c1:6.2f}s")  # fmt: skip
        if not args.no_compare and args.only is None:
            stats = compare_frames(ours, ref, [c for c, _ in columns])
            s = summarize(stats)
            exact = summarize(compare_frames(ours, ref, [c for c, _ in columns], rtol=0.0, atol=0.0))
            print(f"    rows only in one: {row_mismatch(ours, ref)}; agree {s['agree_frac']:.6%} of {s['cells']} "
                  f"cells (bit-identical {exact['agree_frac']:.4%}); null mismatch {s['null_mismatch']}, "
                  f"inf mismatch {s['inf_mismatch']}")  # fmt: skip
            worst = stats.filter(pl.col("agree") < pl.col("cells")).sort("agree_frac").head(8)
            for row in worst.iter_rows(named=True):
                print(f"      {row['column']:8s} agree {row['agree_frac']:.5%} null_mismatch {row['null_mismatch']} "
                      f"max_abs_err {row['max_abs_err']:.3g}")  # fmt: skip
        del ref, ours
    print(f"TOTAL numpy wall {totals['numpy'][0]:.2f}s cpu {totals['numpy'][1]:.2f}s | expressions wall "
          f"{totals['polars'][0]:.2f}s cpu {totals['polars'][1]:.2f}s; peak RSS {peak_rss_gb():.2f} GB")  # fmt: skip
    return 0


def time_groups(groups: list[str], bars: pl.DataFrame, cal, start: str, end: str) -> int:
    """CPU seconds per Alpha158 column group (ROC, RANK, ...; fixed costs such as the layout included: time
    ROC, five plain shifts, for that floor)."""
    columns = alpha158()
    for group in groups:
        chosen = [(c, e) for c, e in columns if c.rstrip("0123456789") in group.split("+")]
        if not chosen:
            raise SystemExit(f"no Alpha158 column group {group!r}")
        best = min(timed(lambda chosen=chosen: compute_columns(chosen, bars, cal, start, end))[2] for _ in range(3))
        print(f"  {group:16s} {len(chosen):3d} columns: cpu {best:.3f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
