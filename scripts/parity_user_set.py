"""Dev-only: a PIPELINE_FEATURES YAML set through the pipeline's code path against pyqlib 0.9.7 on the REAL data.

    /work/qlibenv/bin/python scripts/parity_user_set.py --yaml docs/examples/myfactors.yaml \
        [--set NAME] [--start 2018-01-01] [--end 2019-12-31] [--universe csi300] [--qlib-from calendar|start]

Ours: the file is loaded as the pipeline loads it (``features.catalog.activate`` -> ``features.user_sets``), the
universe's instruments' bars are read with the Qlib binary source the warehouse uses
(``warehouse.sources.QlibBinSource``) over all history, and the set is computed by ``features.compute_features``
(the registry entry point the assets call) for [start, end]; rows are kept where the instrument is a member.
Qlib: ``qlib.init(provider_uri=...)`` then ``D.features(D.instruments(universe), expressions, ...)``, which
keeps each instrument's rows inside its membership spans.

``--qlib-from calendar`` (default) starts Qlib's query on the calendar's first day and keeps [start, end]:
Qlib reads only ``get_extended_window_size`` days before its query start, which for EMA (N - 1 days of an
infinite memory), N = 0 windows and ``Ref(x, 0)`` changes the values near the start; the engine's values are
the full-history ones. ``--qlib-from start`` queries exactly [start, end] to show that dependence.

Prints per column: cells compared, the fraction within 1e-4 relative / 1e-6 absolute (both missing, or the
same infinity, counts as agreeing), the fraction bit-identical, missing-pattern and inf-pattern mismatches and
the largest errors; then overall figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import polars as pl  # noqa: E402

from features import catalog, compute_features  # noqa: E402
from features.compare import compare_frames, row_mismatch  # noqa: E402
from warehouse.sources import QlibBinSource  # noqa: E402

DATA = (REPO / ".." / "shared" / "data" / "qlib_cn").resolve()


def member_rows(frame: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``frame`` whose date lies in one of the instrument's membership spans."""
    spans = membership.select("instrument", pl.col("start_date").alias("_lo"), pl.col("end_date").alias("_hi"))
    inside = frame.join(spans, on="instrument").filter(pl.col("date").is_between(pl.col("_lo"), pl.col("_hi")))
    return inside.drop("_lo", "_hi").unique(["instrument", "date"], keep="first").sort(["instrument", "date"])


def ours(args: argparse.Namespace, source: QlibBinSource, membership: pl.DataFrame) -> pl.DataFrame:
    names = sorted(membership["instrument"].unique().to_list())
    bars = source.read_bars(names, None, args.end).bars  # all history before the range
    frame = compute_features(args.set, bars, source.calendar(), start=args.start, end=args.end)
    return member_rows(frame, membership)


def qlib_frame(args: argparse.Namespace, columns: list[str], exprs: list[str], first_day: str) -> pl.DataFrame:
    import qlib
    from qlib.data import D

    qlib.init(provider_uri=str(args.data), region="cn", kernels=args.kernels)
    query_start = first_day if args.qlib_from == "calendar" else str(args.start)
    df = D.features(D.instruments(args.universe), exprs, start_time=query_start, end_time=str(args.end), freq="day")
    df.columns = columns
    frame = pl.from_pandas(df.astype("float32").reset_index()).rename({"datetime": "date"})
    frame = frame.with_columns(pl.col("date").cast(pl.Date), pl.col("instrument").str.to_uppercase())
    return frame.filter(pl.col("date") >= args.start).sort(["instrument", "date"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yaml", type=Path, required=True, help="a PIPELINE_FEATURES file")
    parser.add_argument("--set", default=None, help="the set to check (default: the file's first set)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--universe", default="csi300")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2018, 1, 1))
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2019, 12, 31))
    parser.add_argument("--qlib-from", choices=("calendar", "start"), default="calendar")
    parser.add_argument("--kernels", type=int, default=1, help="Qlib worker processes")
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--atol", type=float, default=1e-6)
    args = parser.parse_args()

    sets = catalog.activate(str(args.yaml.resolve()))  # the pipeline's loader: a bad file raises here
    user = [s for s in sets.values() if s.source != catalog.BUILTIN]
    spec = sets[args.set] if args.set else user[0]
    args.set = spec.name
    columns, exprs = spec.column_names, [spec.expression(c) for c in spec.column_names]

    source = QlibBinSource(args.data)
    membership = source.membership(args.universe).filter(
        (pl.col("start_date") <= args.end) & (pl.col("end_date") >= args.start)
    )
    print(f"set {spec.name} ({len(columns)} columns) from {args.yaml}; {args.universe}: "
          f"{membership['instrument'].n_unique()} instruments, {args.start} .. {args.end}; "
          f"lookback {'all history' if spec.unbounded else spec.lookback} days")  # fmt: skip
    t = time.perf_counter()
    mine = ours(args, source, membership)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    ref = qlib_frame(args, columns, exprs, str(source.calendar()[0]))
    t_qlib = time.perf_counter() - t
    only_ours, only_ref = row_mismatch(mine, ref)
    stats = compare_frames(mine, ref, columns, rtol=args.rtol, atol=args.atol)
    exact = compare_frames(mine, ref, columns, rtol=0.0, atol=0.0)["agree_frac"].to_list()

    print(f"\nrows: ours {mine.height}, Qlib {ref.height}, only ours {only_ours}, only Qlib {only_ref}")
    print(f"time: ours {t_ours:.1f}s (read + compute), Qlib {t_qlib:.1f}s (query from {args.qlib_from})\n")
    width = max(len(c) for c in columns)
    print(f"{'column':<{width}}  {'cells':>8}  {'within tol':>10}  {'identical':>10}  "
          f"{'null mism':>9}  {'inf mism':>8}  {'max abs err':>11}  {'max rel err':>11}  expression")  # fmt: skip
    for row, same, expr in zip(stats.iter_rows(named=True), exact, exprs, strict=True):
        print(f"{row['column']:<{width}}  {row['cells']:>8}  {row['agree_frac']:>10.6%}  {same:>10.4%}  "
              f"{row['null_mismatch']:>9}  {row['inf_mismatch']:>8}  {row['max_abs_err']:>11.3g}  "
              f"{row['max_rel_err']:>11.3g}  {expr}")  # fmt: skip
    cells, agree = int(stats["cells"].sum()), int(stats["agree"].sum())
    print(f"\noverall: {cells} cells, {agree / cells:.6%} within tolerance, "
          f"null-pattern mismatches {int(stats['null_mismatch'].sum())}, "
          f"inf-pattern mismatches {int(stats['inf_mismatch'].sum())}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
