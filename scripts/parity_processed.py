"""Dev-only: processed (DK_I) Alpha158 / Alpha360 frames against pyqlib 0.9.7 on the REAL data.

    /work/qlibenv/bin/python scripts/parity_processed.py [--set alpha158|alpha360] [--limit N] \
        [--fit-start 2018-01-01] [--fit-end 2018-12-31] [--start 2018-01-01] [--end 2019-12-31]

Processors: the benchmark YAMLs' infer stage, RobustZScoreNorm(fields_group="feature", clip_outlier=True) then
Fillna(fields_group="feature"), over every column of the set (for alpha360 that is the ``alpha360_rnn`` config;
for alpha158 it is ``alpha158_20`` without its FilterCol), fitted on [fit-start, fit-end], over CSI300 members'
rows in [start, end].

(a) ours: bars from ``warehouse.sources.qlib_bin`` (all history), ``features.compute_features``, then
    ``processing.handler.fit_handler`` / ``transform(mode="infer")`` with the CSI300 membership.
(b) Qlib: ``D.features(D.instruments("csi300"), <the set's expressions>, start, end)`` (Qlib reads each
    expression's extended window before ``start``; Alpha158/Alpha360 have no EMA-like operator, so that equals
    a full-history query), then Qlib's own RobustZScoreNorm and Fillna on the (datetime, instrument) frame.
(c) ours, with every raw cell that is not within 1e-4 rel / 1e-6 abs of Qlib's replaced by Qlib's raw value,
    processed by our handler: if (c) equals (b), the raw differences are the whole cause.

Prints the columns that are not fully equal, least agreeing first: rows, the fraction of processed cells within
--rtol / --atol (default 1e-4 / 1e-5), max abs diff, the median |diff| of the other differing cells, cells
clipped to opposite bounds (|diff| > 5), and the fitted median / MAD of both sides; then totals. ``--limit N``
keeps the first N instruments (sorted) of the universe (Qlib then gets that list, filtered by membership here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402

from features import ALPHA158_COLUMNS, ALPHA360_COLUMNS, compute_features  # noqa: E402
from features.compare import KEYS, compare_frames, row_mismatch  # noqa: E402
from processing.config import HandlerConfig, get_handler_config  # noqa: E402
from processing.handler import fit_handler  # noqa: E402
from processing.processor_base import EPS  # noqa: E402
from warehouse.sources import QlibBinSource  # noqa: E402

DATA = (REPO / ".." / "shared" / "data" / "qlib_cn").resolve()
RAW_RTOL, RAW_ATOL = 1e-4, 1e-6  # the raw parity tolerance (scripts/parity_features.py)


def handler_config(name: str) -> HandlerConfig:
    if name == "alpha360":
        return get_handler_config("alpha360_rnn")
    # alpha158_20's infer stage minus its leading FilterCol: the YAML processors over all 158 columns.
    infer = get_handler_config("alpha158_20").infer[1:]
    return HandlerConfig(name="alpha158_yaml_all", feature_set="alpha158", infer=infer)


def member_rows(frame: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    spans = membership.select("instrument", pl.col("start_date").alias("_lo"), pl.col("end_date").alias("_hi"))
    inside = frame.join(spans, on="instrument").filter(pl.col("date").is_between(pl.col("_lo"), pl.col("_hi")))
    return inside.drop("_lo", "_hi").unique(KEYS, keep="first").sort(KEYS)


def qlib_raw(args: argparse.Namespace, names: list[str], columns: list[str], exprs: list[str]) -> pl.DataFrame:
    from qlib.data import D

    universe = D.instruments("csi300") if args.limit is None else names
    df = D.features(universe, exprs, start_time=str(args.start), end_time=str(args.end), freq="day")
    df.columns = columns
    frame = pl.from_pandas(df.astype("float32").reset_index()).rename({"datetime": "date"})
    return frame.with_columns(pl.col("date").cast(pl.Date), pl.col("instrument").str.to_uppercase()).sort(KEYS)


def qlib_process(raw: pl.DataFrame, columns: list[str], args: argparse.Namespace) -> tuple[pl.DataFrame, dict]:
    """Qlib's RobustZScoreNorm + Fillna on Qlib's layout; returns the frame and the fitted median / MAD."""
    from qlib.data.dataset.processor import Fillna, RobustZScoreNorm

    pdf = raw.to_pandas()
    pdf["datetime"] = pd.to_datetime(pdf.pop("date"))
    pdf = pdf.set_index(["datetime", "instrument"]).sort_index()
    pdf.columns = pd.MultiIndex.from_tuples([("feature", c) for c in columns])
    norm = RobustZScoreNorm(str(args.fit_start), str(args.fit_end), fields_group="feature", clip_outlier=True)
    norm.fit(pdf)
    out = Fillna(fields_group="feature")(norm(pdf))
    out.columns = columns
    flat = out.reset_index()
    flat["date"] = flat.pop("datetime").dt.date
    frame = pl.from_pandas(flat).with_columns(pl.col(columns).cast(pl.Float32)).select(KEYS + columns).sort(KEYS)
    mad = np.asarray(norm.std_train, float) / 1.4826 - EPS
    return frame, {"median": np.asarray(norm.mean_train, float), "mad": mad}


def our_process(raw: pl.DataFrame, membership: pl.DataFrame, cfg: HandlerConfig, args) -> tuple[pl.DataFrame, dict]:
    handler = fit_handler(cfg, raw, None, args.fit_start, args.fit_end, membership=membership,
                          start=args.start, end=args.end)  # fmt: skip
    panel = handler.transform(raw, None, mode="infer", membership=membership, start=args.start, end=args.end)
    stats = handler.stats_frame().filter(pl.col("processor").str.ends_with("RobustZScoreNorm"))
    wide = {s: stats.filter(pl.col("stat") == s)["value"].to_numpy() for s in ("median", "scale")}
    frame = panel.to_frame().drop(panel.label_names).sort(KEYS)
    return frame, {"median": wide["median"], "mad": wide["scale"] / 1.4826 - EPS}


def patched(ours: pl.DataFrame, ref: pl.DataFrame, columns: list[str]) -> tuple[pl.DataFrame, dict[str, int]]:
    """Ours with each raw cell outside the raw tolerance of Qlib's replaced by Qlib's (rows Qlib lacks kept)."""
    joined = ours.join(ref.select(KEYS + columns), on=KEYS, how="left", suffix="__q")
    exprs, counts = [], {}
    for c in columns:
        a, b = pl.col(c), pl.col(f"{c}__q").fill_nan(None)
        agree = (a.is_null() & b.is_null()) | (a == b) | ((a - b).abs() <= RAW_ATOL + RAW_RTOL * b.abs())
        # rows absent from Qlib's frame (non-member days) keep ours: the handler drops them anyway
        keep = agree.fill_null(False) | pl.col("__absent")
        exprs.append(pl.when(keep).then(a).otherwise(b).alias(c))
        counts[c] = (~keep).sum().alias(c)
    present = ref.select(KEYS).with_columns(pl.lit(True).alias("__present"))
    joined = joined.join(present, on=KEYS, how="left").with_columns(pl.col("__present").is_null().alias("__absent"))
    n = joined.select(list(counts.values())).row(0, named=True)
    return joined.select(KEYS + exprs), n


def report(title: str, mine: pl.DataFrame, ref: pl.DataFrame, columns: list[str], args, stats=None) -> pl.DataFrame:
    only_ours, only_ref = row_mismatch(mine, ref)
    cmp = compare_frames(mine, ref, columns, rtol=args.rtol, atol=args.atol)
    joined = mine.join(ref, on=KEYS, suffix="__ref")
    flips, shifts = [], []
    for c in columns:
        diff = np.abs(joined[c].to_numpy().astype(float) - joined[f"{c}__ref"].to_numpy().astype(float))
        flips.append(int((diff > 5).sum()))
        # the typical move of a differing cell that is not a clip flip
        moved = diff[(diff > args.atol) & (diff <= 5)]
        shifts.append(float(np.median(moved)) if moved.size else 0.0)
    cmp = cmp.with_columns(pl.Series("flipped", flips), pl.Series("median_shift", shifts))
    if stats is not None:
        ours_s, qlib_s = stats
        cmp = cmp.with_columns(
            pl.Series("median_ours", ours_s["median"]), pl.Series("median_qlib", qlib_s["median"]),
            pl.Series("mad_ours", ours_s["mad"]), pl.Series("mad_qlib", qlib_s["mad"]),
        )  # fmt: skip
    cells, agree = int(cmp["cells"].sum()), int(cmp["agree"].sum())
    equal_cols = int((cmp["agree_frac"] == 1.0).sum())
    print(f"\n== {title}: rows ours {mine.height}, Qlib {ref.height}, only ours {only_ours}, only Qlib {only_ref}")
    print(f"   {equal_cols} of {len(columns)} columns equal on every row; {agree / cells:.6%} of {cells} cells within "
          f"{args.rtol:g} rel / {args.atol:g} abs; max abs diff {cmp['max_abs_err'].max():.3g}; "
          f"cells |diff| > 5 (opposite clip bounds): {sum(flips)}")  # fmt: skip
    shown = cmp.filter(pl.col("agree_frac") < 1.0).sort("agree_frac")
    if shown.height:
        keep = ["column", "cells", "agree_frac", "max_abs_err", "median_shift", "flipped"]
        keep += [c for c in ("median_ours", "median_qlib", "mad_ours", "mad_qlib") if c in cmp.columns]
        with pl.Config(tbl_rows=400, tbl_cols=-1, tbl_width_chars=200, float_precision=6):
            print(shown.select(keep))
    return cmp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("alpha158", "alpha360"), default="alpha158")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="only the first N instruments (sorted)")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2018, 1, 1))
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2019, 12, 31))
    parser.add_argument("--fit-start", type=dt.date.fromisoformat, default=dt.date(2018, 1, 1))
    parser.add_argument("--fit-end", type=dt.date.fromisoformat, default=dt.date(2018, 12, 31))
    parser.add_argument("--kernels", type=int, default=1, help="Qlib worker processes")
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--atol", type=float, default=1e-5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import qlib
    from qlib.contrib.data.loader import Alpha158DL, Alpha360DL

    qlib.init(provider_uri=str(args.data), region="cn", kernels=args.kernels)
    exprs, columns = (Alpha158DL if args.set == "alpha158" else Alpha360DL).get_feature_config()
    assert list(columns) == list(ALPHA158_COLUMNS if args.set == "alpha158" else ALPHA360_COLUMNS)
    columns, exprs = list(columns), list(exprs)
    source = QlibBinSource(args.data)
    membership = source.membership("csi300").filter(
        (pl.col("start_date") <= args.end) & (pl.col("end_date") >= args.start)
    )
    names = sorted(membership["instrument"].unique().to_list())
    if args.limit:
        names = names[: args.limit]
        membership = membership.filter(pl.col("instrument").is_in(names))
    print(f"{args.set}: {len(names)} CSI300 instruments, rows {args.start}..{args.end}, "
          f"fit {args.fit_start}..{args.fit_end}")  # fmt: skip

    t = time.perf_counter()
    bars = source.read_bars(names, None, args.end).bars
    raw_ours = compute_features(args.set, bars, source.calendar(), start=args.start, end=args.end)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    raw_ref = member_rows(qlib_raw(args, names, columns, exprs), membership)
    t_qlib = time.perf_counter() - t
    print(f"raw: ours {t_ours:.1f}s, Qlib {t_qlib:.1f}s")
    raw_cmp = compare_frames(member_rows(raw_ours, membership), raw_ref, columns, rtol=RAW_RTOL, atol=RAW_ATOL)
    bad = raw_cmp.filter(pl.col("agree") < pl.col("cells")).with_columns((pl.col("cells") - pl.col("agree")).alias("n"))
    total = int(raw_cmp["cells"].sum())
    print(f"raw member cells {total}: {int(bad['n'].sum())} outside {RAW_RTOL:g} rel / {RAW_ATOL:g} abs, in "
          + ", ".join(f"{r['column']} {r['n']}" for r in bad.iter_rows(named=True)))  # fmt: skip

    cfg = handler_config(args.set)
    t = time.perf_counter()
    proc_ours, st_ours = our_process(raw_ours, membership, cfg, args)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    proc_ref, st_ref = qlib_process(raw_ref, columns, args)
    t_qlib = time.perf_counter() - t
    print(f"processing: ours {t_ours:.1f}s, Qlib {t_qlib:.1f}s")
    report("(a) ours vs (b) Qlib, processed", proc_ours, proc_ref, columns, args, (st_ours, st_ref))

    fixed, n = patched(raw_ours, raw_ref, columns)
    print(f"\n(c): {sum(n.values())} raw cells replaced by Qlib's: "
          + ", ".join(f"{c} {v}" for c, v in n.items() if v))  # fmt: skip
    proc_fixed, st_fixed = our_process(fixed, membership, cfg, args)
    report("(c) ours with Qlib's raw cells vs (b) Qlib, processed", proc_fixed, proc_ref, columns, args,
           (st_fixed, st_ref))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
