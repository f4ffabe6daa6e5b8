"""The hand-over format between the dataset views and the models.

A ``SampleSet`` is plain numpy so that it is built and tested without torch; the trainer moves ``rows``,
``windows`` and ``labels`` to the device once and builds every batch by index gather.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

# How a sample's window is laid out: "flat" (DatasetH) or "sequence" (TSDatasetH).
Layout = Literal["flat", "sequence"]
LAYOUTS: tuple[str, ...] = ("flat", "sequence")


@dataclass
class SampleSet:
    """Model-ready samples of one segment.

    The input of sample ``k`` is ``rows[windows[k]]``, shape ``[step_len, n_row_features]``, oldest step first.

    * ``layout == "flat"`` (Qlib's ``DatasetH``): ``step_len == 1`` and each row holds ``d_feat`` blocks of
      ``n_row_features // d_feat`` time steps (Alpha360: 6 blocks of 60); the model reshapes the row to
      ``[d_feat, T]`` and permutes it to ``[T, d_feat]``.
    * ``layout == "sequence"`` (Qlib's ``TSDatasetH``): each window entry is one day's processed feature row,
      ``n_row_features == d_feat``; missing days point at the padding row (all NaN) or at a neighbouring
      row, according to the fill rule used to build the windows.
    """

    rows: np.ndarray  # float32 [n_rows, n_row_features]
    windows: np.ndarray  # int64 [n_samples, step_len], indices into rows
    labels: np.ndarray  # float32 [n_samples], NaN where the label is missing
    dates: np.ndarray  # datetime64[D] [n_samples]
    instruments: np.ndarray  # str [n_samples]
    layout: Layout
    d_feat: int
    feature_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.windows)
        if self.windows.ndim != 2:
            raise ValueError(f"windows must be 2-D [n_samples, step_len], got shape {self.windows.shape}")
        for name in ("labels", "dates", "instruments"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} samples")
        if self.rows.ndim != 2:
            raise ValueError(f"rows must be 2-D [n_rows, n_row_features], got shape {self.rows.shape}")
        if self.rows.shape[1] % self.d_feat:
            raise ValueError(f"{self.rows.shape[1]} row features do not split into d_feat={self.d_feat} blocks")
        if self.layout == "flat" and self.windows.shape[1] != 1:
            raise ValueError("a flat sample set has step_len 1")

    @property
    def n_samples(self) -> int:
        return len(self.windows)

    @property
    def step_len(self) -> int:
        """Time steps the model sees per sample."""
        if self.layout == "flat":
            return self.rows.shape[1] // self.d_feat
        return self.windows.shape[1]

    def subset(self, mask: np.ndarray) -> SampleSet:
        """The samples where ``mask`` is true (rows are shared, not copied)."""
        return SampleSet(
            rows=self.rows,
            windows=self.windows[mask],
            labels=self.labels[mask],
            dates=self.dates[mask],
            instruments=self.instruments[mask],
            layout=self.layout,
            d_feat=self.d_feat,
            feature_names=self.feature_names,
        )

    def dense_inputs(self, index: np.ndarray | None = None) -> np.ndarray:
        """Inputs as ``[n, T, d_feat]`` float32 (reference path for tests and small sets)."""
        win = self.windows if index is None else self.windows[index]
        x = self.rows[win]  # [n, step_len, n_row_features]
        if self.layout == "flat":
            n = x.shape[0]
            return x.reshape(n, self.d_feat, -1).transpose(0, 2, 1).copy()
        return x
