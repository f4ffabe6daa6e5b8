"""Qlib's default label: ``LABEL0 = Ref($close, -2)/Ref($close, -1) - 1``, the return from the next day's close
to the close two trading days ahead, in float32 like Qlib. NaN (null) where either future close is missing,
including an instrument's last two days and suspended days ahead."""

from __future__ import annotations

import numpy as np

from features.calendar_grid import Grid, Sink

LABEL_COLUMNS: list[str] = ["LABEL0"]
FIELDS = ("close",)
REQUIRED = ("close",)
HORIZON = 2  # trading days of future bars the label reads


def write_labels(grid: Grid, sink: Sink) -> None:
    close = grid.field("close")
    pos = grid.out_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        # the padding after each instrument's last day makes reads past it NaN
        sink.put("LABEL0", close[pos + 2] / close[pos + 1] - np.float32(1))
