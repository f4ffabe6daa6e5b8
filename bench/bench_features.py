"""Benchmark: Alpha158 + Alpha360 + label over the full CSI300 history of the real data, and Qlib for comparison.

    /work/qlibenv/bin/python bench/bench_features.py            # ours, then Qlib's D.features on a subset
    .venv/bin/python bench/bench_features.py --no-qlib          # ours only (pyqlib not needed)

Universe: every instrument listed in instruments/csi300.txt that has data, whole calendar. Prints wall and CPU
time per feature set, the memory its frame holds (each buffer once: the 60 all-null VWAP columns of Alpha360
share one), the RSS after it, and the process's peak RSS (the three result frames are all kept alive, as a
pipeline run holding them would; the allocator also keeps a set's freed scratch resident for a while).
Polars' threads are set with POLARS_MAX_THREADS in the environment. Qlib takes many minutes for the full set on
two cores, so by default it runs on every ``--qlib-every``-th instrument and its time is scaled by the ratio of
output rows; ours is also timed on that same subset, so the ratio is reported both ways. Qlib runs with its
default ``kernels`` (max(cores - 2, 1)).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from features import compute_features  # noqa: E402

DATA = (REPO / ".." / "shared" / "data" / "qlib_cn").resolve()
SETS = ("alpha158", "alpha360", "label")
LABEL_EXPR = "Ref($close, -2)/Ref($close, -1) - 1"


class _RssWatch:
    """The highest RSS seen by polling every 10 ms: the kernel's high-water mark (ru_maxrss) is only brought
    up to date when the RSS is about to shrink, so read mid-run it can be below the RSS of the moment."""

    def __init__(self) -> None:
        self.high = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.01):
            self.high = max(self.high, rss_gb())


_WATCH: _RssWatch | None = None


def peak_rss_gb() -> float:
    """The process's peak RSS so far (GB): the larger of the kernel's mark and the polled RSS."""
    polled = _WATCH.high if _WATCH is not None else 0.0
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, polled, rss_gb())  # KiB on Linux


def rss_gb() -> float:
    """Resident memory now (pages the allocators keep after a free for reuse count too)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9
    except (OSError, ValueError):
        return float("nan")


def read_bars(root: Path, instruments: list[str]) -> tuple[pl.DataFrame, list[dt.date]]:
    """The project's reader when available, else a small numpy reader of the bins."""
    try:
        from warehouse.sources.qlib_bin import read_calendar, read_qlib_bars

        return read_qlib_bars(root, instruments), read_calendar(root)
    except ImportError:
        pass
    cal = [dt.date.fromisoformat(x) for x in (root / "calendars" / "day.txt").read_text().split()]
    fields = ("open", "high", "low", "close", "volume", "factor", "change")
    frames = []
    for inst in instruments:
        cols = {}
        for f in fields:
            raw = np.fromfile(root / "features" / inst.lower() / f"{f}.day.bin", dtype="<f4")
            cols[f] = (int(raw[0]), raw[1:].astype(np.float64))
        start, n = cols["close"][0], cols["close"][1].size
        frame = pl.DataFrame(
            {"instrument": [inst] * n, "date": cal[start : start + n], **{f: v for f, (_, v) in cols.items()}}
        )
        frames.append(frame.filter(pl.col("close").is_not_nan()))
    return pl.concat(frames), cal


def _held_gb(frame: pl.DataFrame) -> float:
    """The frame's buffers, each counted once: the all-null columns of an absent field (Alpha360's 60 VWAP
    columns) share one, which ``estimated_size`` counts per column."""
    total, null_counted = 0, False
    for s in frame.get_columns():
        shared_null = s.dtype == pl.Float32 and s.null_count() == s.len()
        if not (shared_null and null_counted):
            total += s.estimated_size()
        null_counted |= shared_null
    return total / 1e9


def universe(root: Path) -> list[str]:
    lines = (root / "instruments" / "csi300.txt").read_text().splitlines()
    names = sorted({line.split()[0].upper() for line in lines if line.strip()})
    return [n for n in names if (root / "features" / n.lower() / "close.day.bin").is_file()]


def run_ours(
    bars: pl.DataFrame, cal: list[dt.date]
) -> tuple[dict[str, pl.DataFrame], dict[str, tuple[float, float]], dict[str, float]]:
    out, times, rss = {}, {}, {}
    for name in SETS:
        wall, cpu = time.perf_counter(), time.process_time()
        out[name] = compute_features(name, bars, cal)
        times[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        rss[name] = rss_gb()
    return out, times, rss


def run_qlib(
    root: Path, instruments: list[str], cal: list[dt.date], kernels: int | None
) -> dict[str, tuple[float, float]]:
    """(wall, cpu) seconds per set; cpu counts this process only (all of Qlib's work when kernels == 1)."""
    import qlib
    from qlib.contrib.data.loader import Alpha158DL, Alpha360DL
    from qlib.data import D

    kwargs = {} if kernels is None else {"kernels": kernels}
    qlib.init(provider_uri=str(root), region="cn", **kwargs)
    config = {"alpha158": Alpha158DL.get_feature_config()[0], "alpha360": Alpha360DL.get_feature_config()[0],
              "label": [LABEL_EXPR]}  # fmt: skip
    times = {}
    for name in SETS:
        wall, cpu = time.perf_counter(), time.process_time()
        df = D.features(instruments, config[name], start_time=str(cal[0]), end_time=str(cal[-1]), freq="day")
        times[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        del df
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--no-qlib", action="store_true")
    parser.add_argument("--qlib-every", type=int, default=10, help="Qlib on every N-th instrument (1 = all)")
    parser.add_argument("--qlib-kernels", type=int, default=None, help="default: Qlib's own default")
    args = parser.parse_args()

    global _WATCH
    _WATCH = _RssWatch()
    names = universe(args.data)
    t = time.perf_counter()
    bars, cal = read_bars(args.data, names)
    read_s = time.perf_counter() - t
    usable = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, {usable} usable, load average {load}; "
          f"ours on {pl.thread_pool_size()} Polars thread(s) (POLARS_MAX_THREADS)")  # fmt: skip
    print(f"universe: {len(names)} CSI300 instruments with data, {cal[0]} .. {cal[-1]}; "
          f"{bars.height} bars read in {read_s:.1f}s ({bars.estimated_size() / 1e9:.2f} GB)")  # fmt: skip

    rss_bars = rss_gb()
    out, times, rss = run_ours(bars, cal)
    total_wall = sum(w for w, _ in times.values())
    total_cpu = sum(c for _, c in times.values())
    for name in SETS:
        frame = out[name]
        print(f"  {name:9s} {frame.height} rows x {frame.width - 2} cols: wall {times[name][0]:6.2f}s  "
              f"cpu {times[name][1]:6.2f}s  ({_held_gb(frame):.2f} GB held; RSS after it {rss[name]:.2f})")  # fmt: skip
    print(f"OURS TOTAL (alpha158 + alpha360 + label): wall {total_wall:.2f}s, cpu {total_cpu:.2f}s, "
          f"peak RSS {peak_rss_gb():.2f} GB (all three frames held, plus the bars; RSS with the bars read "
          f"{rss_bars:.2f} GB)")  # fmt: skip
    rows_total = out["label"].height
    del out

    if args.no_qlib:
        return 0
    try:
        import qlib  # noqa: F401
    except ImportError:
        print("pyqlib not importable here: Qlib comparison skipped (run with /work/qlibenv/bin/python)")
        return 0

    subset = names[:: args.qlib_every]
    sub_bars = bars.filter(pl.col("instrument").is_in(subset))
    sub_out, sub_times, _ = run_ours(sub_bars, cal)
    sub_rows = sub_out["label"].height
    del sub_out
    qlib_times = run_qlib(args.data, subset, cal, args.qlib_kernels)
    scale = rows_total / sub_rows
    q_sub = sum(w for w, _ in qlib_times.values())
    q_cpu = sum(c for _, c in qlib_times.values())
    o_sub = sum(w for w, _ in sub_times.values())
    o_cpu = sum(c for _, c in sub_times.values())
    print(f"\nQlib D.features on every {args.qlib_every}-th instrument ({len(subset)} instruments, {sub_rows} rows, "
          f"{sub_rows / rows_total:.1%} of the rows), kernels={args.qlib_kernels or 'default'}:")  # fmt: skip
    for name in SETS:
        print(f"  {name:9s} qlib {qlib_times[name][0]:7.1f}s   ours {sub_times[name][0]:6.2f}s   "
              f"ratio {qlib_times[name][0] / sub_times[name][0]:6.1f}x")  # fmt: skip
    print(f"SUBSET: qlib {q_sub:.1f}s vs ours {o_sub:.2f}s -> {q_sub / o_sub:.1f}x faster (wall)")
    print(f"SUBSET CPU: qlib {q_cpu:.1f}s vs ours {o_cpu:.2f}s -> {q_cpu / o_cpu:.1f}x less CPU (load-independent;"
          f" Qlib's cpu covers all its work only with one kernel)")  # fmt: skip
    print(f"load average now: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"FULL (qlib scaled by rows x{scale:.2f}): qlib ~{q_sub * scale:.0f}s vs ours {total_wall:.1f}s measured "
          f"-> ~{q_sub * scale / total_wall:.1f}x faster; CPU ~{q_cpu * scale:.0f}s vs {total_cpu:.1f}s "
          f"-> ~{q_cpu * scale / total_cpu:.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
