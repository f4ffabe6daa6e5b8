"""Signal analysis as Qlib's ``SigAnaRecord`` reports it: daily IC / Rank IC and the long-short returns.

Conventions taken from Qlib (``calc_ic`` / ``calc_long_short_return`` on a pandas frame built from the score and
label series, which is an outer join on (date, instrument)):

* IC of a date is the Pearson correlation of score and label over the rows where both are present; Rank IC is
  the Spearman correlation (average ranks of those same rows). Fewer than two pairs or a constant side gives NaN.
* IC / Rank IC are the means of the daily values and ICIR / Rank ICIR are mean / std (ddof=1), NaN days skipped,
  not annualised.
* Long-short: on each date the top and bottom ``int(n_rows * quantile)`` rows by score (``n_rows`` counts every
  row of the outer join on that date, even rows with a missing score or label) form the long and short groups;
  ties at the cut go to the instrument that sorts first, and rows without a score fill a group only when the
  scored rows run out (pandas ``DataFrame.nlargest`` behaviour).
  ``long_short = (mean label of long - mean label of short) / 2``;
  ``long_avg`` is, as in Qlib, the plain mean label of all rows of the date (the benchmark the long group is
  compared with). Annualised figures use ``ann_scaler`` (252, Qlib's default for this record).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

KEYS = ["instrument", "date"]


def _label_column(labels: pl.DataFrame, label_col: str | None) -> str:
    candidates = [c for c in labels.columns if c not in KEYS]
    if label_col is not None:
        if label_col not in labels.columns:
            raise ValueError(f"label column {label_col!r} not in labels; columns are {labels.columns}")
        return label_col
    if len(candidates) != 1:
        raise ValueError(f"labels has {len(candidates)} value columns {candidates}; pass label_col to choose one")
    return candidates[0]


def _check_frame(frame: pl.DataFrame, name: str, value: str) -> None:
    missing = [c for c in [*KEYS, value] if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; columns are {frame.columns}")
    dup = frame.select(KEYS).is_duplicated()
    if dup.any():
        first = frame.filter(dup).row(0, named=True)
        raise ValueError(
            f"{name} has {int(dup.sum())} rows with a duplicate (instrument, date) key, "
            f"e.g. {first['instrument']} on {first['date']}"
        )


def _joined(scores: pl.DataFrame, labels: pl.DataFrame, label_col: str | None) -> pl.DataFrame:
    """Outer join of score and label with NaN for anything missing (nulls and NaNs are the same to Qlib)."""
    col = _label_column(labels, label_col)
    _check_frame(scores, "scores", "score")
    _check_frame(labels, "labels", col)
    left = scores.select(KEYS + [pl.col("score").cast(pl.Float64).fill_null(math.nan).alias("pred")])
    right = labels.select(KEYS + [pl.col(col).cast(pl.Float64).fill_null(math.nan).alias("label")])
    joined = left.join(right, on=KEYS, how="full", coalesce=True)
    return joined.with_columns(pl.col("pred", "label").fill_null(math.nan))


def _pearson(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """Pearson correlation inside a group; NaN for fewer than two rows or a constant side."""
    ac = a - a.mean()
    bc = b - b.mean()
    sab = (ac * bc).sum()
    saa = (ac * ac).sum()
    sbb = (bc * bc).sum()
    ok = (pl.len() >= 2) & (saa > 0) & (sbb > 0)
    return pl.when(ok).then((sab / (saa.sqrt() * sbb.sqrt())).clip(-1.0, 1.0)).otherwise(math.nan)


def daily_ic(scores: pl.DataFrame, labels: pl.DataFrame, label_col: str | None = None) -> pl.DataFrame:
    """date, ic, rank_ic for every date of scores or labels (NaN where a date has too few pairs)."""
    joined = _joined(scores, labels, label_col)
    valid = joined.filter(pl.col("pred").is_not_nan() & pl.col("label").is_not_nan())
    per_date = (
        valid.with_columns(
            pl.col("pred").rank("average").over("date").alias("pred_rank"),
            pl.col("label").rank("average").over("date").alias("label_rank"),
        )
        .group_by("date")
        .agg(
            _pearson(pl.col("pred"), pl.col("label")).alias("ic"),
            _pearson(pl.col("pred_rank"), pl.col("label_rank")).alias("rank_ic"),
        )
    )
    dates = joined.select("date").unique()
    return (
        dates.join(per_date, on="date", how="left")
        .with_columns(pl.col("ic", "rank_ic").cast(pl.Float64).fill_null(math.nan))
        .sort("date")
    )


def daily_long_short(
    scores: pl.DataFrame, labels: pl.DataFrame, quantile: float = 0.2, label_col: str | None = None
) -> pl.DataFrame:
    """date, long_short, long_avg as Qlib's ``calc_long_short_return`` computes them (see module notes)."""
    if not 0 < quantile <= 0.5:
        raise ValueError(f"quantile must be in (0, 0.5], got {quantile}")
    joined = _joined(scores, labels, label_col)
    # int(len * quantile) on the full group, computed in float64 exactly as Python does
    joined = joined.with_columns(
        (pl.len().over("date").cast(pl.Float64) * quantile).floor().cast(pl.Int64).alias("n_pick")
    )
    # position of each row in the date's descending and ascending score order; like pandas' DataFrame.nlargest,
    # rows without a score come after all scored rows (instrument order), filling the group when scores run out
    position = pl.int_range(pl.len()).over("date")
    keys = ["date", "no_pred", "pred", "instrument"]
    picked = (
        joined.with_columns(pl.col("pred").is_nan().alias("no_pred"))
        .sort(keys, descending=[False, False, True, False])
        .with_columns(position.alias("long_pos"))
        .sort(keys)
        .with_columns(position.alias("short_pos"))
    )
    label_ok = pl.col("label").is_not_nan()
    groups = picked.group_by("date").agg(
        pl.col("label").filter((pl.col("long_pos") < pl.col("n_pick")) & label_ok).mean().alias("r_long"),
        pl.col("label").filter((pl.col("short_pos") < pl.col("n_pick")) & label_ok).mean().alias("r_short"),
    )
    averages = joined.group_by("date").agg(pl.col("label").filter(label_ok).mean().alias("long_avg"))
    return (
        averages.join(groups, on="date", how="left")
        .with_columns(((pl.col("r_long") - pl.col("r_short")) / 2).alias("long_short"))
        .select("date", "long_short", "long_avg")
        .with_columns(pl.col("long_short", "long_avg").cast(pl.Float64).fill_null(math.nan))
        .sort("date")
    )


def _mean_std(values: pl.Series) -> tuple[float, float]:
    arr = values.cast(pl.Float64).fill_null(math.nan).to_numpy()
    arr = arr[~np.isnan(arr)]
    mean = float(arr.mean()) if arr.size else math.nan
    std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return mean, std


def _ratio(num: float, den: float) -> float:
    return num / den if den and not math.isnan(den) else math.nan


def signal_metrics(daily: pl.DataFrame, ann_scaler: int = 252) -> dict[str, float]:
    """ic, icir, rank_ic, rank_icir from a ``daily_ic`` frame; with ``long_short`` / ``long_avg`` columns also
    their mean, annualised return (mean * ann_scaler) and Sharpe-like ratio (mean / std * sqrt(ann_scaler))."""
    missing = [c for c in ("ic", "rank_ic") if c not in daily.columns]
    if missing:
        raise ValueError(f"daily lacks columns {missing}; build it with daily_ic()")
    out: dict[str, float] = {}
    for col, name in (("ic", "ic"), ("rank_ic", "rank_ic")):
        mean, std = _mean_std(daily[col])
        out[name] = mean
        out[f"{name}ir"] = _ratio(mean, std)
    for col in ("long_short", "long_avg"):
        if col in daily.columns:
            mean, std = _mean_std(daily[col])
            out[f"{col}_mean"] = mean
            out[f"{col}_ann_return"] = mean * ann_scaler
            out[f"{col}_ann_sharpe"] = _ratio(mean, std) * math.sqrt(ann_scaler)
    return out


def signal_analysis(
    scores: pl.DataFrame,
    labels: pl.DataFrame,
    quantile: float = 0.2,
    ann_scaler: int = 252,
    label_col: str | None = None,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Daily frame (date, ic, rank_ic, long_short, long_avg) and its metrics, in one call."""
    daily = daily_ic(scores, labels, label_col).join(
        daily_long_short(scores, labels, quantile, label_col), on="date", how="left"
    )
    return daily, signal_metrics(daily, ann_scaler)
