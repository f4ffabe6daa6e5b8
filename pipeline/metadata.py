"""Presentation helpers for materialization metadata: plots as inline PNG markdown, frames as tables."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import polars as pl


def line_plot_png(
    series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str, x: Sequence | None = None, title: str = ""
) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
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
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def line_plot_markdown(series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str, **kw) -> str:
    # Imported here: matplotlib costs ~0.3 s at CLI start, and only a training / evaluation run plots.
    from evaluation.plots import png_markdown

    return png_markdown(line_plot_png(series, xlabel, ylabel, **kw), alt=ylabel)


def frame_markdown(frame: pl.DataFrame, float_format: str = "{:.4f}") -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return float_format.format(v)
        return "" if v is None else str(v)

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, rule, *body])
