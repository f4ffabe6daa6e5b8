"""The metadata helpers the assets draw their plots and tables with: what is drawn, and that it embeds as PNG."""

from __future__ import annotations

import base64
import datetime as dt
import io
import math

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from matplotlib.container import BarContainer

from pipeline.metadata import (
    benchmark_bars_figure,
    benchmark_bars_markdown,
    figure_png,
    frame_markdown,
    line_plot_figure,
    line_plot_markdown,
    png_markdown,
)

DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]


def _decoded(markdown: str, alt: str) -> np.ndarray:
    """The image of a markdown data-URI image, decoded (fails unless it is a readable PNG)."""
    prefix = f"![{alt}](data:image/png;base64,"
    assert markdown.startswith(prefix) and markdown.endswith(")")
    png = base64.b64decode(markdown[len(prefix) : -1])
    return plt.imread(io.BytesIO(png), format="png")


def test_line_plot_draws_each_series_against_x() -> None:
    series = {"without cost": [0.01, -0.01, 0.02], "with cost": [0.0, -0.02, 0.01]}
    fig = line_plot_figure(series, "date", "cumulative excess return", x=DAYS)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == list(series)
    for line, values in zip(ax.get_lines(), series.values(), strict=True):
        assert list(line.get_ydata()) == values and list(line.get_xdata()) == DAYS
    assert ax.get_xlabel() == "date" and ax.get_ylabel() == "cumulative excess return"
    plt.close(fig)
    epochs = line_plot_figure({"train loss": [3.0, 2.0]}, "epoch", "loss")
    assert list(epochs.axes[0].get_lines()[0].get_xdata()) == [1, 2]  # no x: epochs from 1
    plt.close(epochs)


def test_line_plot_markdown_embeds_a_readable_png() -> None:
    image = _decoded(line_plot_markdown({"IC": [0.1, 0.2, 0.15]}, "date", "cumulative IC", x=DAYS), "cumulative IC")
    height, width, channels = image.shape
    assert height > 100 and width > 300 and channels in (3, 4)
    assert image.std() > 0  # something is drawn


def _results() -> pl.DataFrame:
    rows = [
        ("gru", "alphaflow", 1, 0.04, 0.01, 0.05, 0.02),
        ("lstm", "alphaflow", 1, 0.03, 0.00, 0.02, 0.01),
        ("gru", "qlib", 1, 0.05, 0.02, 0.06, 0.03),  # qlib has no lstm run: its bar is missing (NaN)
    ]
    return pl.DataFrame(
        rows,
        schema=["model", "implementation", "n_epochs", "ic_mean", "ic_std", "rank_ic_mean", "rank_ic_std"],
        orient="row",
    )


def test_benchmark_bars_one_bar_per_model_and_variant_in_each_metric_panel() -> None:
    fig = benchmark_bars_figure(_results())
    assert len(fig.axes) == 2
    for ax, metric in zip(fig.axes, ("ic", "rank_ic"), strict=True):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["gru", "lstm"]
        bars = [c for c in ax.containers if isinstance(c, BarContainer)]
        assert [c.get_label() for c in bars] == ["alphaflow (1 ep.)", "qlib (1 ep.)"]
        (ours_gru, ours_lstm), (qlib_gru, qlib_lstm) = ([p.get_height() for p in c.patches] for c in bars)
        mean = _results()[f"{metric}_mean"].to_list()
        assert (ours_gru, ours_lstm, qlib_gru) == tuple(mean) and math.isnan(qlib_lstm)
    plt.close(fig)
    image = _decoded(benchmark_bars_markdown(_results(), alt="IC"), "IC")
    assert image.shape[1] > image.shape[0] > 100  # two panels side by side


def test_benchmark_bars_name_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"results lacks columns \['rank_ic_std'\]"):
        benchmark_bars_figure(_results().drop("rank_ic_std"))


def test_png_markdown_refuses_other_bytes() -> None:
    fig = line_plot_figure({"a": [1.0]}, "x", "y")
    png = figure_png(fig)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert base64.b64decode(png_markdown(png, "y")[len("![y](data:image/png;base64,") : -1]) == png
    with pytest.raises(ValueError, match="expects PNG bytes"):
        png_markdown(b"GIF89a")


def test_frame_markdown_rounds_floats_and_escapes_pipes() -> None:
    frame = pl.DataFrame({"a|b": ["x|y", None], "ic": [0.123456, float("nan")], "n": [3, 4]})
    assert frame_markdown(frame).splitlines() == [
        "| a\\|b | ic | n |",
        "|---|---|---|",
        "| x\\|y | 0.1235 | 3 |",
        "|  | nan | 4 |",
    ]
    assert frame_markdown(frame.select("ic"), "{:.1f}").splitlines()[2] == "| 0.1 |"
