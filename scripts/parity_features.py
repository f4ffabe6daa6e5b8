"""Dev-only: our Alpha158 / Alpha360 / label against pyqlib 0.9.7 on the REAL data (nothing is written to the repo).

    /work/qlibenv/bin/python scripts/parity_features.py [--limit N] [--chunk 60] [--kernels 1]

Universe: every instrument of instruments/csi300.txt that has data (all of them unless --limit), over the whole
calendar. Qlib evaluates Alpha158DL/Alpha360DL's expressions and ``Ref($close, -2)/Ref($close, -1) - 1`` with
``D.features``; ours reads the same bins. Instruments are processed in chunks to bound memory. Prints, per
feature, the fraction of cells within 1e-4 relative / 1e-6 absolute (both missing, or the same infinity, counts
as agreeing) and the missing-value pattern mismatches, then overall figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from features import ALPHA158_COLUMNS, ALPHA360_COLUMNS, LABEL_COLUMNS, compute_features  # noqa: E402
from features.compare import compare_frames, row_mismatch  # noqa: E402
from warehouse.sources.qlib_bin import read_calendar, read_qlib_bars  # noqa: E402

DATA = (REPO / ".." / "shared" / "data" / "qlib_cn").resolve()
LABEL_EXPR = "Ref($close, -2)/Ref($close, -1) - 1"
SETS = {"alpha158": ALPHA158_COLUMNS, "alpha360": ALPHA360_COLUMNS, "label": LABEL_COLUMNS}


def universe(root: Path, limit: int | None) -> list[str]:
    names = sorted(
        {
            line.split()[0].upper()
            for line in (root / "instruments" / "csi300.txt").read_text().splitlines()
            if line.strip()
        }
    )
    names = [n for n in names if (root / "features" / n.lower() / "close.day.bin").is_file()]
    return names[:limit] if limit else names


def qlib_frame(fields: list[str], names: list[str], instruments: list[str], start: str, end: str) -> pl.DataFrame:
    from qlib.data import D

    df = D.features(instruments, fields, start_time=start, end_time=end, freq="day")
    df.columns = names
    frame = pl.from_pandas(df.reset_index()).rename({"datetime": "date"})
    return frame.with_columns(pl.col("date").cast(pl.Date), pl.col(names).cast(pl.Float32)).sort(["instrument", "date"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="only the first N instruments (sorted)")
    parser.add_argument("--chunk", type=int, default=60, help="instruments per Qlib call")
    parser.add_argument("--kernels", type=int, default=1, help="Qlib worker processes")
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--atol", type=float, default=1e-6)
    args = parser.parse_args()

    import qlib
    from qlib.contrib.data.loader import Alpha158DL, Alpha360DL

    qlib.init(provider_uri=str(args.data), region="cn", kernels=args.kernels)
    config = {"alpha158": Alpha158DL.get_feature_config(), "alpha360": Alpha360DL.get_feature_config(),
              "label": ([LABEL_EXPR], LABEL_COLUMNS)}  # fmt: skip
    calendar = read_calendar(args.data)
    start, end = str(calendar[0]), str(calendar[-1])
    names = universe(args.data, args.limit)
    print(f"{len(names)} instruments, {start} .. {end}, chunks of {args.chunk}, Qlib kernels={args.kernels}")

    stats: dict[str, list[pl.DataFrame]] = {k: [] for k in SETS}
    rows = {k: [0, 0, 0] for k in SETS}  # ours-only, qlib-only, matched
    seconds = {"qlib": 0.0, "ours": 0.0}
    for lo in range(0, len(names), args.chunk):
        part = names[lo : lo + args.chunk]
        bars = read_qlib_bars(args.data, part)
        for name, cols in SETS.items():
            t = time.perf_counter()
            ref = qlib_frame(*config[name], part, start, end)
            seconds["qlib"] += time.perf_counter() - t
            t = time.perf_counter()
            ours = compute_features(name, bars, calendar)
            seconds["ours"] += time.perf_counter() - t
            only_ours, only_ref = row_mismatch(ours, ref)
            rows[name][0] += only_ours
            rows[name][1] += only_ref
            rows[name][2] += ours.join(ref.select("instrument", "date"), on=["instrument", "date"]).height
            stats[name].append(compare_frames(ours, ref, cols, rtol=args.rtol, atol=args.atol))
        done = f"{lo + len(part)}/{len(names)}"
        print(f"  {done} instruments done (qlib {seconds['qlib']:.0f}s, ours {seconds['ours']:.1f}s)", flush=True)

    total_cells = total_agree = total_null = total_inf = 0
    for name in SETS:
        merged = (
            pl.concat(stats[name])
            .group_by("column", maintain_order=True)
            .agg(
                pl.col("cells").sum(),
                pl.col("agree").sum(),
                pl.col("null_mismatch").sum(),
                pl.col("inf_mismatch").sum(),
                pl.col("max_abs_err").max(),
                pl.col("max_rel_err").max(),
            )  # fmt: skip
            .with_columns((pl.col("agree") / pl.col("cells")).alias("agree_frac"))
        )
        cells, agree = int(merged["cells"].sum()), int(merged["agree"].sum())
        nulls, infs = int(merged["null_mismatch"].sum()), int(merged["inf_mismatch"].sum())
        total_cells, total_agree, total_null, total_inf = (
            total_cells + cells,
            total_agree + agree,
            total_null + nulls,
            total_inf + infs,
        )
        print(f"\n== {name}: rows matched {rows[name][2]}, only ours {rows[name][0]}, only Qlib {rows[name][1]}")
        print(f"   cells {cells}, within tolerance {agree / cells:.6%}, null-pattern mismatches {nulls} "
              f"({1 - nulls / cells:.6%} agree), inf mismatches {infs}")  # fmt: skip
        # alpha158: every feature in order; alpha360/label: the least agreeing columns
        shown = merged if name == "alpha158" else merged.sort("agree_frac").head(12)
        with pl.Config(tbl_rows=200, tbl_width_chars=140, float_precision=6):
            print(shown.select("column", "agree_frac", "null_mismatch", "inf_mismatch", "max_abs_err", "max_rel_err"))
    print(f"\nOVERALL: {total_cells} cells, within tolerance {total_agree / total_cells:.6%}, null-pattern "
          f"agreement {1 - total_null / total_cells:.6%} ({total_null} cells), inf mismatches {total_inf}")  # fmt: skip
    print(f"time: qlib {seconds['qlib']:.1f}s, ours {seconds['ours']:.1f}s (includes per-chunk overhead)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
