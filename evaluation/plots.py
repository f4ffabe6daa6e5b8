"""PNG charts of the evaluation (matplotlib, Agg backend) and markdown helpers for Dagster metadata."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: charts are rendered to bytes

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _need(frame: pl.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; columns are {frame.columns}")


def _cumulative(frame: pl.DataFrame, column: str) -> np.ndarray:
    # NaN days (too few pairs) add nothing, like pandas' skipna cumsum
    return np.cumsum(np.nan_to_num(frame[column].cast(pl.Float64).fill_null(math.nan).to_numpy()))


def cumulative_ic_png(daily: pl.DataFrame, title: str = "Cumulative IC") -> bytes:
    """Cumulative sums of the daily IC and Rank IC (a ``daily_ic`` frame)."""
    _need(daily, ["date", "ic", "rank_ic"], "daily")
    fig, ax = plt.subplots(figsize=(8, 3.5))
    dates = daily["date"].to_numpy()
    ax.plot(dates, _cumulative(daily, "ic"), label="IC")
    ax.plot(dates, _cumulative(daily, "rank_ic"), label="Rank IC")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    return _png(fig)


def excess_return_png(daily: pl.DataFrame, title: str = "Cumulative excess return") -> bytes:
    """Cumulative (summed, as Qlib accumulates) excess return without and with cost, and the drawdown of the
    with-cost curve below it (a backtest ``daily`` frame)."""
    _need(daily, ["date", "excess_return_without_cost", "excess_return_with_cost"], "daily")
    dates = daily["date"].to_numpy()
    without = _cumulative(daily, "excess_return_without_cost")
    with_cost = _cumulative(daily, "excess_return_with_cost")
    drawdown = with_cost - np.maximum.accumulate(with_cost)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(dates, without, label="without cost")
    top.plot(dates, with_cost, label="with cost")
    top.axhline(0.0, color="grey", linewidth=0.8)
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.fill_between(dates, drawdown, 0.0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown")
    fig.autofmt_xdate()
    return _png(fig)


def benchmark_bars_png(results: pl.DataFrame, metrics: Sequence[str] = ("ic", "rank_ic")) -> bytes:
    """Mean ± std (error bar) of each metric per model, one bar per implementation and epoch budget (a
    ``benchmark_results`` frame)."""
    _need(results, ["model", "implementation", "n_epochs", *(f"{m}_{s}" for m in metrics for s in ("mean", "std"))],
          "results")  # fmt: skip
    models = sorted(results["model"].unique().to_list())
    variants = results.select("implementation", "n_epochs").unique().sort("implementation", "n_epochs").rows()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    width = 0.8 / max(len(variants), 1)
    x = np.arange(len(models))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (impl, epochs) in enumerate(variants):
            part = results.filter((pl.col("implementation") == impl) & (pl.col("n_epochs") == epochs))
            by_model = {r["model"]: r for r in part.iter_rows(named=True)}
            mean = [by_model[m][f"{metric}_mean"] if m in by_model else math.nan for m in models]
            std = [by_model[m][f"{metric}_std"] if m in by_model else 0.0 for m in models]
            ax.bar(x + i * width - 0.4 + width / 2, mean, width, yerr=std, capsize=3, label=f"{impl} ({epochs} ep.)")
        ax.set_xticks(x, models, rotation=30)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_title(f"{metric.replace('_', ' ')}: mean ± std over seeds")
        ax.legend(fontsize=7)
    return _png(fig)


def png_markdown(png: bytes, alt: str = "chart") -> str:
    """A markdown image embedding the PNG as a base64 data URI (renders in Dagster's metadata panel)."""
    if not png.startswith(b"\x89PNG"):
        raise ValueError("png_markdown expects PNG bytes")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping[str, object]] | pl.DataFrame, digits: int = 4) -> str:
    """A markdown table from a frame or from row dicts (columns in first-row order, floats rounded)."""
    records = rows.to_dicts() if isinstance(rows, pl.DataFrame) else [dict(r) for r in rows]
    if not records:
        return ""
    columns = list(records[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c, ""), digits) for c in columns) + " |" for r in records]
    return "\n".join(lines)


def metrics_table(metrics: Mapping[str, Mapping[str, float]], digits: int = 4) -> str:
    """Backtest metrics ({"excess_return_without_cost": {...}, ...}) as one table, one row per series."""
    rows = [{"series": name, **values} for name, values in metrics.items()]
    return markdown_table(rows, digits)
