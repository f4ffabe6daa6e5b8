"""Wall time and peak memory of the two dataset views at CSI300 scale, on random data.

    .venv/bin/python bench/bench_datasets.py                      # both views, 300 instruments x 4000 days
    .venv/bin/python bench/bench_datasets.py --view flat --days 1000

* flat: the alpha360_rnn handler (RobustZScoreNorm + Fillna, DropnaLabel + CSRankNorm) and DatasetH view over
  360 Alpha360 columns.
* sequence: the alpha158_20 handler (FilterCol to 20 of 158 columns first) and the TSDatasetH view, step_len 20,
  ffill+bfill.

CPU seconds are reported beside wall seconds because the machine may be shared (polars uses several
threads, so CPU can exceed wall on an idle machine). Each view runs in its own child process so that its peak
RSS is its own. "build peak" is the peak RSS above the RSS after the random input frames were made (the input
frame itself is the caller's memory).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402


def rss_now_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) of this process.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mb()


def business_days(n: int, start: dt.date = dt.date(2005, 1, 4)) -> list[dt.date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def make_frames(names: list[str], n_inst: int, n_days: int, seed: int = 0):
    """Random float32 features (1% NaN, 2% missing rows), labels (last 2 days null) and two-range membership."""
    rng = np.random.default_rng(seed)
    days = business_days(n_days)
    insts = [f"SH{600000 + i:06d}" for i in range(n_inst)]
    keep = rng.random(n_inst * n_days) > 0.02
    n = int(keep.sum())
    cols: dict[str, object] = {
        "instrument": pl.Series(np.repeat(insts, n_days)[keep]),
        "date": pl.Series(np.tile(np.array(days, dtype="datetime64[D]"), n_inst)[keep]),
    }
    for name in names:
        x = rng.standard_normal(n, dtype=np.float32)
        x[rng.random(n) < 0.01] = np.nan
        cols[name] = pl.Series(name, x)
    features = pl.DataFrame(cols)
    y = rng.standard_normal(n, dtype=np.float32) * np.float32(0.02)
    labels = features.select("instrument", "date").with_columns(pl.Series("LABEL0", y))
    labels = labels.with_columns(
        pl.when(pl.col("date") >= days[-2]).then(None).otherwise(pl.col("LABEL0")).alias("LABEL0")
    )
    cut = days[n_days // 3]
    membership = pl.DataFrame(
        {
            "instrument": insts + insts[: n_inst // 10],
            "start_date": [days[0]] * n_inst + [days[n_days // 2]] * (n_inst // 10),
            "end_date": [days[-1]] * (n_inst - n_inst // 10) + [cut] * (n_inst // 10) + [days[-1]] * (n_inst // 10),
        }
    )
    return features, labels, membership, days


def segments(days: list[dt.date]) -> dict[str, tuple[dt.date, dt.date]]:
    n = len(days)
    a, b = int(n * 0.6), int(n * 0.8)
    return {"train": (days[0], days[a - 1]), "valid": (days[a], days[b - 1]), "test": (days[b], days[-1])}


def run_one(view: str, n_inst: int, n_days: int) -> dict:
    from processing.dataset import build_segments
    from processing.handler import fit_handler

    if view == "flat":
        config = "alpha360_rnn"
        names = [f"{b}{i}" for b in ("CLOSE", "OPEN", "HIGH", "LOW", "VWAP", "VOLUME") for i in range(59, -1, -1)]
    else:
        from processing.config import ALPHA158_20

        config = "alpha158_20"
        names = list(ALPHA158_20) + [f"X{i}" for i in range(158 - 20)]
    t0 = time.perf_counter()
    features, labels, membership, days = make_frames(names, n_inst, n_days)
    gen_s = time.perf_counter() - t0
    segs = segments(days)
    base = rss_now_mb()
    reset_peak()

    t0, c0 = time.perf_counter(), time.process_time()
    handler = fit_handler(config, features, labels, *segs["train"], membership=membership)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    sets = build_segments(handler, features, labels, segs, layout=view, step_len=20, membership=membership)
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = hwm_mb()

    # One training batch of 800 samples gathered by index, as the trainer does.
    train = sets["train"]
    idx = np.random.default_rng(1).choice(train.n_samples, 800, replace=False)
    t0 = time.perf_counter()
    for _ in range(20):
        batch = train.dense_inputs(idx)
    batch_ms = (time.perf_counter() - t0) / 20 * 1000
    return {
        "view": view,
        "config": config,
        "instruments": n_inst,
        "days": n_days,
        "input_rows": features.height,
        "input_columns": len(names),
        "input_frame_mb": round(features.estimated_size("mb"), 1),
        "generate_s": round(gen_s, 2),
        "fit_handler_wall_s": round(fit_s, 2),
        "fit_handler_cpu_s": round(fit_cpu, 2),
        "build_segments_wall_s": round(build_s, 2),
        "build_segments_cpu_s": round(build_cpu, 2),
        "build_peak_mb_above_inputs": round(peak - base, 1),
        "process_peak_rss_mb": round(peak, 1),
        "samples": {k: v.n_samples for k, v in sets.items()},
        "rows_mb": {k: round(v.rows.nbytes / 2**20, 1) for k, v in sets.items()},
        "windows_mb": {k: round(v.windows.nbytes / 2**20, 1) for k, v in sets.items()},
        "batch_shape": list(batch.shape),
        "batch_gather_ms": round(batch_ms, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--view", choices=["flat", "sequence", "both"], default="both")
    ap.add_argument("--instruments", type=int, default=300)
    ap.add_argument("--days", type=int, default=4000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.view, args.instruments, args.days)))
        return
    views = ["flat", "sequence"] if args.view == "both" else [args.view]
    for view in views:
        cmd = [sys.executable, __file__, "--child", "--view", view, "--instruments", str(args.instruments)]
        out = subprocess.run([*cmd, "--days", str(args.days)], capture_output=True, text=True, check=False)
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            raise SystemExit(f"{view} run failed")
        res = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"== {view} view ({res['config']}): {res['instruments']} instruments x {res['days']} days")
        for k, v in res.items():
            if k not in ("view", "config", "instruments", "days"):
                print(f"  {k:28s} {v}")


if __name__ == "__main__":
    main()
