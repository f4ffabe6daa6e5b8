"""Presentation helpers for materialization metadata: plots as inline PNG markdown, frames as tables.

matplotlib is imported inside the plotting functions: it costs ~0.3 s at CLI start, and only a training,
evaluation or benchmark run plots.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: charts are rendered to bytes
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def line_plot_figure(
    series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str, x: Sequence | None = None, title: str = ""
) -> Figure:
    """One line per entry of ``series``, against ``x`` (dates, say) or 1, 2, ... (epochs)."""
    fig, ax = _pyplot().subplots(figsize=(7, 3.2), dpi=90)
    for name, values in series.items():
        xs = list(x) if x is not None else list(range(1, len(values) + 1))
        ax.plot(xs, list(values), label=name, linewidth=1.3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if x is not None:
        fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def line_plot_markdown(series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str, **kw) -> str:
    return png_markdown(figure_png(line_plot_figure(series, xlabel, ylabel, **kw)), alt=ylabel)


def benchmark_bars_figure(results: pl.DataFrame, metrics: Sequence[str] = ("ic", "rank_ic")) -> Figure:
    """Mean ± std (error bar) of each metric per model, one bar per implementation and epoch budget (a
    ``benchmark_results`` frame); one panel per metric."""
    import numpy as np

    needed = ["model", "implementation", "n_epochs", *(f"{m}_{s}" for m in metrics for s in ("mean", "std"))]
    missing = [c for c in needed if c not in results.columns]
    if missing:
        raise ValueError(f"results lacks columns {missing}; columns are {results.columns}")
    models = sorted(results["model"].unique().to_list())
    variants = results.select("implementation", "n_epochs").unique().sort("implementation", "n_epochs").rows()
    fig, axes = _pyplot().subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
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
    return fig


def benchmark_bars_markdown(results: pl.DataFrame, alt: str = "IC and Rank IC per model") -> str:
    return png_markdown(figure_png(benchmark_bars_figure(results)), alt=alt)


def png_markdown(png: bytes, alt: str = "chart") -> str:
    """A markdown image embedding the PNG as a base64 data URI (renders in Dagster's metadata panel)."""
    if not png.startswith(b"\x89PNG"):
        raise ValueError("png_markdown expects PNG bytes")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def frame_markdown(frame: pl.DataFrame, float_format: str = "{:.4f}") -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return float_format.format(v)
        return "" if v is None else str(v).replace("|", "\\|")  # a bare | would split the cell

    head = "| " + " | ".join(c.replace("|", "\\|") for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, rule, *body])
