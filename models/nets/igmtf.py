"""Qlib's IGMTF network (pytorch_igmtf.py; Xu et al., "Instance-wise Graph-based Framework for Multivariate
Time Series Forecasting").

A stock's hidden state is ``lins`` (two Linear + LeakyReLU) of its last base-RNN state. The training segment's
hidden states, one set per trading day, form a memory (``TrainMemory``; Qlib recomputes it every epoch and
before predicting). For one day's cross-section:

1. the ``k_day`` training days whose mean hidden state is most cosine-similar to this day's mean are picked;
2. their stocks' hidden states go through ``lins`` once more (as in Qlib) and ``project2``; each stock of the
   day takes its ``n_neighbor`` most cosine-similar of them (``project1`` of its own state against
   ``project2`` of theirs) and averages them weighted by that similarity (the sum divided by ``n_neighbor``);
3. ``fc_out_pred`` reads the stock's hidden state next to that average.

Qlib concatenates the picked days into a tensor whose length depends on the days; the memory here is padded to
[days, most stocks of a day, H] with a validity mask, so every shape is fixed and it stays on the device.
Names, shapes and creation order match Qlib's IGMTFModel (``rnn``, ``lins.linear0`` / ``linear1``, the unused
``fc_output``, ``project1``, ``project2``, ``fc_out_pred``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from models.nets.common import base_rnn, cosine_similarity, last_hidden

# Samples per forward pass when a memory is computed. On the CPU small passes stay in cache: Qlib's IGMTF over 40
# days of 300 stocks trained 4,540 / 7,070 samples/s at 1 / 2 threads with 512 per pass, 3,600 / 5,240 with 8192
# (the refresh is as many forward passes as the epoch's own). A GPU wants large passes.
CPU_MEMORY_CHUNK = 512
MEMORY_CHUNK = 8192


def memory_chunk(device: torch.device | str) -> int:
    """Samples per forward pass of a memory computation on ``device``."""
    return CPU_MEMORY_CHUNK if torch.device(device).type == "cpu" else MEMORY_CHUNK


@dataclass
class TrainMemory:
    """Per training day: the hidden states of its stocks (padded), which are real, and their mean."""

    hidden: torch.Tensor  # [D, S, H], zeros where not valid
    valid: torch.Tensor  # [D, S] bool
    day_mean: torch.Tensor  # [D, H]

    @classmethod
    def from_days(cls, days: Sequence[torch.Tensor]) -> TrainMemory:
        """From one ``[n_d, H]`` tensor per day (the shape of Qlib's ``train_hidden``)."""
        if not days:
            raise ValueError("the training memory needs at least one day")
        width = max(int(day.shape[0]) for day in days)
        first = days[0]
        hidden = first.new_zeros(len(days), width, first.shape[1])
        valid = torch.zeros(len(days), width, dtype=torch.bool, device=first.device)
        for d, day in enumerate(days):
            hidden[d, : day.shape[0]] = day.detach()
            valid[d, : day.shape[0]] = True
        return cls(hidden, valid, torch.stack([day.detach().mean(dim=0) for day in days]))

    @classmethod
    def from_hidden(cls, hidden: torch.Tensor, day: torch.Tensor) -> TrainMemory:
        """From ``[M, H]`` hidden states and each one's day label ``[M]`` (any integers), without a host loop."""
        hidden = hidden.detach()
        _, day_number, counts = torch.unique(day, return_inverse=True, return_counts=True)
        order = torch.argsort(day_number, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.empty_like(order)
        slot[order] = torch.arange(order.numel(), device=order.device) - starts[day_number[order]]
        n_days, width = counts.numel(), int(counts.max())
        padded = hidden.new_zeros(n_days, width, hidden.shape[1])
        padded[day_number, slot] = hidden
        valid = torch.zeros(n_days, width, dtype=torch.bool, device=hidden.device)
        valid[day_number, slot] = True
        day_mean = padded.sum(dim=1) / counts[:, None].to(hidden.dtype)
        return cls(padded, valid, day_mean)


class IGMTFNet(nn.Module):
    def __init__(
        self, d_feat: int, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0, base_model: str = "GRU"
    ):
        super().__init__()
        self.rnn = base_rnn(base_model, d_feat, hidden_size, num_layers, dropout)
        self.lins = nn.Sequential()
        for i in range(2):
            self.lins.add_module(f"linear{i}", nn.Linear(hidden_size, hidden_size))
            self.lins.add_module(f"leakyrelu{i}", nn.LeakyReLU())
        self.fc_output = nn.Linear(hidden_size * 2, hidden_size * 2)  # created (and in the state_dict) but unused
        self.project1 = nn.Linear(hidden_size, hidden_size, bias=False)
        self.project2 = nn.Linear(hidden_size, hidden_size, bias=False)
        self.fc_out_pred = nn.Linear(hidden_size * 2, 1)
        self.d_feat = d_feat

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, T, d_feat] -> [N, H]``: the states a TrainMemory holds (Qlib's ``get_hidden=True``)."""
        return self.lins(last_hidden(self.rnn, x))

    @torch.no_grad()
    def train_memory(self, x: torch.Tensor, day: torch.Tensor, chunk: int | None = None) -> TrainMemory:
        """The memory of the training samples ``x`` ([M, T, d_feat]) with day labels ``day`` ([M]), in eval mode;
        ``chunk`` samples per forward pass (default: ``memory_chunk``)."""
        chunk = chunk or memory_chunk(x.device)
        was_training = self.training
        self.eval()
        try:
            states = torch.cat([self.hidden(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)])
        finally:
            self.train(was_training)
        return TrainMemory.from_hidden(states, day)

    def forward(self, x: torch.Tensor, memory: TrainMemory, k_day: int = 10, n_neighbor: int = 10) -> torch.Tensor:
        own = self.hidden(x)  # [N, H]
        # Qlib fails when fewer than k_day days or n_neighbor states exist; here it takes what there is.
        day_score = cosine_similarity(own.mean(dim=0, keepdim=True), memory.day_mean)  # [1, D]
        days = torch.topk(day_score[0], min(k_day, day_score.shape[1])).indices
        others = self.project2(self.lins(memory.hidden[days].flatten(0, 1)))  # [k * S, H]
        valid = memory.valid[days].flatten()

        similarity = cosine_similarity(self.project1(own), others)
        similarity = similarity.masked_fill(~valid[None, :], float("-inf"))
        best, which = torch.topk(similarity, min(n_neighbor, similarity.shape[1]), dim=1)  # [N, n]
        weight = torch.where(torch.isfinite(best), best, torch.zeros_like(best)) / n_neighbor
        # index_select, not others[which]: the latter's backward adds into shared rows with atomic float adds on
        # a multi-threaded CPU, so training was not bit-reproducible; index_select's backward adds in order
        picked = others.index_select(0, which.flatten()).view(*which.shape, others.shape[1])  # [N, n, H]
        neighbours = (weight[:, :, None] * picked).sum(dim=1)  # [N, H]
        return self.fc_out_pred(torch.cat([own, neighbours], dim=1))[:, 0]
