"""The benchmark table as Qlib publishes its own, from the per-seed run rows: mean ± std per implementation,
model and epoch budget (``aggregate``), rendered as markdown, and ours side by side with Qlib's."""

from __future__ import annotations

import math

import polars as pl

IMPLEMENTATION = "alphaflow"
METRICS = ("ic", "icir", "rank_ic", "rank_icir", "annualized_return", "information_ratio", "max_drawdown")
METRIC_TITLES = {
    "ic": "IC",
    "icir": "ICIR",
    "rank_ic": "Rank IC",
    "rank_icir": "Rank ICIR",
    "annualized_return": "Annualized Return",
    "information_ratio": "Information Ratio",
    "max_drawdown": "Max Drawdown",
}


def aggregate(runs: pl.DataFrame) -> pl.DataFrame:
    """Mean and sample standard deviation (ddof 1; 0 with one seed) per implementation, model and budget."""
    group = ["implementation", "model", "dataset", "n_epochs", "device", "threads"]
    stats = []
    for m in METRICS:
        stats += [pl.col(m).mean().alias(f"{m}_mean"), pl.col(m).std(ddof=1).fill_null(0.0).alias(f"{m}_std")]
    return (
        runs.group_by(group)
        .agg(
            pl.col("seed").sort().cast(pl.Utf8).str.join(",").alias("seeds"),
            pl.len().alias("n_seeds"),
            *stats,
            pl.col("train_s").mean().alias("train_s_mean"),
            pl.col("epochs_run").mean().alias("epochs_run_mean"),
            pl.col("test_start").min(),
            pl.col("test_end").max(),
            pl.col("finished_at").max().alias("last_finished_at"),
        )
        .sort("model", "implementation", "n_epochs")
    )


def _pm(mean: float, std: float, digits: int = 4) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.{digits}f}±{std:.{digits}f}"


def results_markdown(results: pl.DataFrame) -> str:
    """Qlib's benchmark table layout: one row per model and implementation, metrics as mean ± std."""
    if results.height == 0:
        return "_no benchmark results yet_"
    head = (
        "| Model | Dataset | Implementation | "
        + " | ".join(METRIC_TITLES[m] for m in METRICS)
        + " | Train time / seed | Epochs (cap) | Seeds | Device |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results.sort("model", "implementation", "n_epochs").iter_rows(named=True):
        device = r["device"] + (f" ({r['threads']} thread{'s' if r['threads'] != 1 else ''})" if r["threads"] else "")
        cells = [r["model"], r["dataset"], r["implementation"]]
        cells += [_pm(r[f"{m}_mean"], r[f"{m}_std"]) for m in METRICS]
        cells += [
            f"{r['train_s_mean']:.0f} s",
            f"{r['epochs_run_mean']:.1f} ({r['n_epochs']})",
            f"{r['n_seeds']} ({r['seeds']})",
            device,
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def comparison_markdown(results: pl.DataFrame, reference_prefix: str = "qlib") -> str:
    """Per model that both implementations ran with the same epoch budget: our mean IC, Rank IC and train time
    against the reference's."""
    if results.height == 0:
        return "_no benchmark results yet_"
    ours = results.filter(pl.col("implementation") == IMPLEMENTATION)
    ref = results.filter(pl.col("implementation").str.starts_with(reference_prefix))
    joined = ours.join(ref, on=["model", "n_epochs", "device"], suffix="_ref")
    if joined.height == 0:
        return "_no model ran in both implementations with the same epoch budget and device_"
    lines = [
        "| Model | Epochs (cap) | IC ours / Qlib | Rank IC ours / Qlib | Train time ours / Qlib | Reference |",
        "|---|---|---|---|---|---|",
    ]
    for r in joined.sort("model").iter_rows(named=True):
        lines.append(
            f"| {r['model']} | {r['n_epochs']} | {r['ic_mean']:.4f} / {r['ic_mean_ref']:.4f} | "
            f"{r['rank_ic_mean']:.4f} / {r['rank_ic_mean_ref']:.4f} | "
            f"{r['train_s_mean']:.0f} s / {r['train_s_mean_ref']:.0f} s "
            f"({r['train_s_mean'] / r['train_s_mean_ref']:.2f}×) | {r['implementation_ref']} |"
        )
    return "\n".join(lines)
