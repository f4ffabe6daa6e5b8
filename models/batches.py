"""A SampleSet held on the compute device; every batch is an index gather there.

The rows, windows and labels cross to the device once. A flat row of ``d_feat * T`` values (Alpha360: six
blocks of 60 days, oldest first inside each block) is viewed as ``[d_feat, T]`` and transposed to
``[T, d_feat]`` per batch, which is the reshape Qlib's non-TS models do in ``forward``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from processing.samples import SampleSet


def _to_device(array: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    with warnings.catch_warnings():
        # Read-only numpy memory is only ever read here.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(device=device, dtype=dtype, non_blocking=False)


def bad_input_mask(samples: SampleSet) -> np.ndarray:
    """Per sample: true where any input value of its window is NaN or infinite."""
    bad_rows = ~np.isfinite(samples.rows).all(axis=1)
    if not bad_rows.any():
        return np.zeros(samples.n_samples, dtype=bool)
    return bad_rows[samples.windows].any(axis=1)


@dataclass
class DeviceSamples:
    rows: torch.Tensor  # [n_rows, F_row] float32
    index: torch.Tensor  # flat: [n] row numbers; sequence: [n, step_len] row numbers
    labels: torch.Tensor  # [n] float32, NaN where missing
    layout: str
    d_feat: int

    @classmethod
    def from_samples(cls, samples: SampleSet, device: torch.device | str) -> DeviceSamples:
        device = torch.device(device)
        index = samples.windows[:, 0] if samples.layout == "flat" else samples.windows
        return cls(
            rows=_to_device(samples.rows, torch.float32, device),
            index=_to_device(index, torch.long, device),
            labels=_to_device(samples.labels, torch.float32, device),
            layout=samples.layout,
            d_feat=samples.d_feat,
        )

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def inputs(self, idx: torch.Tensor | slice) -> torch.Tensor:
        """Network inputs ``[B, T, d_feat]`` of the samples ``idx`` (a tensor of sample numbers or a slice)."""
        picked = self.rows[self.index[idx]]
        if self.layout == "flat":
            # contiguous: the CPU RNN kernels run several times slower on the transposed view
            return picked.view(picked.shape[0], self.d_feat, -1).transpose(1, 2).contiguous()
        return picked
