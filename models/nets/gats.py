"""Qlib's GATs network (pytorch_gats[_ts].py): a base RNN, then graph attention over one day's stocks.

The input is a cross-section (every stock of one trading day, ``[N, T, d_feat]``). Each stock's last RNN
hidden state ``h`` is projected by ``transformation``; the score of stock i for stock j is
``LeakyReLU(a[:H] . z_j + a[H:] . z_i)`` with ``z = transformation(h)``, softmaxed over j. The attended sum
``att @ h`` is added to ``h`` and goes through ``fc``, LeakyReLU and ``fc_out``.

Qlib builds the [N, N, 2H] matrix of all pairs; the score splits into the two halves of ``a``, which costs
O(N H) instead of O(N^2 H) and gives the same numbers. Names and creation order match Qlib's GATModel
(``rnn``, ``transformation``, ``a`` [2H, 1], ``fc``, ``fc_out``), so a Qlib state_dict loads and the same seed
gives the same weights; ``load_base_weights`` copies a trained LSTMNet / GRUNet into ``rnn`` and ``fc_out``.
"""

from __future__ import annotations

import torch
from torch import nn

from models.nets.common import base_rnn, last_hidden


class GATNet(nn.Module):
    def __init__(
        self, d_feat: int, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0, base_model: str = "GRU"
    ):
        super().__init__()
        self.rnn = base_rnn(base_model, d_feat, hidden_size, num_layers, dropout)
        self.transformation = nn.Linear(hidden_size, hidden_size)
        self.a = nn.Parameter(torch.randn(hidden_size * 2, 1))
        self.fc = nn.Linear(hidden_size, hidden_size)
        self.fc_out = nn.Linear(hidden_size, 1)
        self.leaky_relu = nn.LeakyReLU()
        self.hidden_size = hidden_size
        self.d_feat = d_feat

    def attention(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[N, H] -> [N, N]``, row i the weights stock i gives every stock of the day (rows sum to 1)."""
        z = self.transformation(hidden)
        to_other = z @ self.a[: self.hidden_size]  # [N, 1]: the part of the score that depends on j
        to_self = z @ self.a[self.hidden_size :]  # [N, 1]: the part that depends on i
        return torch.softmax(self.leaky_relu(to_self + to_other.t()), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = last_hidden(self.rnn, x)
        hidden = self.attention(hidden) @ hidden + hidden
        return self.fc_out(self.leaky_relu(self.fc(hidden)))[:, 0]
