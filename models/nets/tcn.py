"""Qlib's TCN network (pytorch_tcn[_ts].py over qlib/contrib/model/tcn.py, the Bai et al. temporal conv net).

``num_layers`` residual blocks of ``n_chans`` channels, the i-th with dilation 2**i; each block is two causal
weight-normalised convolutions (ReLU, dropout after each) plus a 1x1 convolution on the skip path where the
channel count changes. The newest step of the last block feeds ``Linear(n_chans, 1)``. Channels are the
features: the ``[N, T, d_feat]`` input is read as ``[N, d_feat, T]``.

Module names follow Qlib's so its state_dict loads: ``tcn.network.{i}.conv1`` / ``conv2`` (``bias``,
``weight_g``, ``weight_v`` of torch's legacy weight_norm), the same convolutions again as ``net.0`` / ``net.4``,
``downsample`` (block 0 only, when d_feat != n_chans) and ``linear``.

Qlib pads both ends of each convolution by (kernel - 1) * dilation and trims as many outputs off the right end
(its Chomp1d); each convolution here does the same inside its own forward, so the outputs are causal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.nets.dropout import Dropout


class CausalWeightNormConv1d(nn.Conv1d):
    """A causal Conv1d whose weight is ``weight_g * weight_v / ||weight_v||`` (norm per output channel).

    The parameters are created in the order and with the names torch's legacy ``weight_norm`` leaves
    (``bias``, ``weight_g``, ``weight_v``), initialised from the Conv1d's own default weight, so the random
    stream and the state_dict match Qlib's.
    """

    def __init__(self, n_in: int, n_out: int, kernel_size: int, dilation: int):
        super().__init__(n_in, n_out, kernel_size, dilation=dilation)
        direction = self.weight.detach().clone()
        del self.weight
        self.weight_g = nn.Parameter(direction.norm(dim=(1, 2), keepdim=True))
        self.weight_v = nn.Parameter(direction)
        self.pad = (kernel_size - 1) * dilation  # on both ends, and as many outputs trimmed on the right

    def effective_weight(self) -> torch.Tensor:
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=(1, 2), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Qlib's layout: the convolution pads both sides itself and the right-hand outputs are dropped. Padding
        # the left side by hand instead computes fewer outputs but materialises a zero-filled copy of every
        # layer's input, which cost 10 % more per training step (CPU, Qlib's Alpha360 TCN, batch 2000).
        out = F.conv1d(x, self.effective_weight(), self.bias, self.stride, self.pad, self.dilation)
        return out[:, :, : out.shape[-1] - self.pad]


class TemporalBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.conv1 = CausalWeightNormConv1d(n_in, n_out, kernel_size, dilation)
        self.conv2 = CausalWeightNormConv1d(n_out, n_out, kernel_size, dilation)
        # Slots 1 and 5 hold Qlib's right-end trims (Chomp1d); the convolutions here trim their own outputs.
        self.net = nn.Sequential(
            self.conv1, nn.Identity(), nn.ReLU(), Dropout(dropout),
            self.conv2, nn.Identity(), nn.ReLU(), Dropout(dropout),
        )  # fmt: skip
        self.downsample = nn.Conv1d(n_in, n_out, 1) if n_in != n_out else None
        # Qlib's block redraws conv1 / conv2 weights from N(0, 0.01) here, but under weight_norm that draw is
        # overwritten by g * v / ||v|| at the next forward, so it has no effect; the draws are still made so the
        # random stream (and with it the skip convolution's weight and every later block) matches Qlib's.
        torch.empty_like(self.conv1.weight_v).normal_(0, 0.01)
        torch.empty_like(self.conv2.weight_v).normal_(0, 0.01)
        if self.downsample is not None:
            with torch.no_grad():
                self.downsample.weight.normal_(0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.net(x) + skip)


class TemporalConvNet(nn.Module):
    def __init__(self, d_feat: int, channels: list[int], kernel_size: int, dropout: float):
        super().__init__()
        widths = [d_feat, *channels]
        self.network = nn.Sequential(
            *(TemporalBlock(widths[i], widths[i + 1], kernel_size, 2**i, dropout) for i in range(len(channels)))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class TCNNet(nn.Module):
    """Defaults: Qlib's Alpha360 benchmark (5 layers of 128 channels, kernel 3, dropout 0.5)."""

    def __init__(
        self, d_feat: int, n_chans: int = 128, num_layers: int = 5, kernel_size: int = 3, dropout: float = 0.5
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError("TCN needs at least one layer")
        self.tcn = TemporalConvNet(d_feat, [n_chans] * num_layers, kernel_size, dropout)
        self.linear = nn.Linear(n_chans, 1)
        self.d_feat = d_feat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tcn(x.transpose(1, 2))  # [N, n_chans, T]
        return self.linear(out[:, :, -1])[:, 0]
