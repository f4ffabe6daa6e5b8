"""Qlib's HIST network (pytorch_hist.py; Xu et al., "HIST: A Graph-based Framework for Stock Trend Forecasting").

Input: one day's cross-section ``[N, T, d_feat]`` and its stock-to-concept matrix ``[N, K]`` (1 where stock i
belongs to concept k). From each stock's last base-RNN hidden state ``h``:

1. predefined concepts: a concept's vector is the sum of its members' ``h`` over (members + 1); every stock
   attends (softmax of Qlib's cosine similarity) over the concepts with a non-zero vector sum, the result goes
   through ``fc_es``; ``fc_es_back`` of it is what the stock shares, ``LeakyReLU(fc_es_fore(.))`` its forecast;
2. hidden concepts, on the residual ``r = h - shared``: each stock is linked to its most cosine-similar other
   stock (weight: that similarity), a linked-to stock also to itself (weight: its self-similarity); a hidden
   concept's vector is the weighted sum of the residuals linked to it; attention as in 1 through ``fc_is``,
   ``fc_is_back`` and ``fc_is_fore``;
3. the individual part ``LeakyReLU(fc_indi(h - both shared parts))``;

and the prediction is ``fc_out`` of the sum of the three forecasts. Qlib drops the zero-sum concepts (a
data-dependent shape); here they are masked out of the softmax instead, which gives the same numbers and
keeps every shape fixed.

Names, shapes and creation order (each hidden Linear re-initialised Xavier-uniform) match Qlib's HISTModel,
including the layers it creates but never uses (``fc_es_middle``, ``fc_is_middle``, ``fc_indi_fore``,
``fc_out_es``, ``fc_out_is``, ``fc_out_indi``), so a Qlib state_dict loads and the same seed gives the same
weights.
"""

from __future__ import annotations

import torch
from torch import nn

from models.nets.common import base_rnn, cosine_similarity, last_hidden, masked_softmax

HIDDEN_LAYERS = (
    "fc_es",
    "fc_is",
    "fc_es_middle",
    "fc_is_middle",
    "fc_es_fore",
    "fc_is_fore",
    "fc_indi_fore",
    "fc_es_back",
    "fc_is_back",
    "fc_indi",
)
OUTPUT_LAYERS = ("fc_out_es", "fc_out_is", "fc_out_indi", "fc_out")


class HISTNet(nn.Module):
    def __init__(
        self, d_feat: int, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0, base_model: str = "GRU"
    ):
        super().__init__()
        self.rnn = base_rnn(base_model, d_feat, hidden_size, num_layers, dropout)
        for name in HIDDEN_LAYERS:
            layer = nn.Linear(hidden_size, hidden_size)
            nn.init.xavier_uniform_(layer.weight)
            setattr(self, name, layer)
        self.leaky_relu = nn.LeakyReLU()
        for name in OUTPUT_LAYERS:
            setattr(self, name, nn.Linear(hidden_size, 1))
        self.hidden_size = hidden_size
        self.d_feat = d_feat

    @staticmethod
    def _attend(stocks: torch.Tensor, concepts: torch.Tensor) -> torch.Tensor:
        """Each stock's attention-weighted mix of the concept vectors whose sum is non-zero."""
        weights = masked_softmax(cosine_similarity(stocks, concepts), concepts.sum(dim=1) != 0)
        return weights @ concepts

    @staticmethod
    def hidden_links(residual: torch.Tensor) -> torch.Tensor:
        """``[N, H] -> [N, N]``: entry (i, j) the weight of stock i's residual in hidden concept j."""
        similarity = cosine_similarity(residual, residual)
        n = similarity.shape[0]
        off_diagonal = similarity * (1 - torch.eye(n, device=residual.device, dtype=residual.dtype))
        # On the zeroed diagonal: a stock whose every other similarity is negative links to itself with weight 0.
        best, partner = off_diagonal.max(dim=1)
        links = torch.zeros_like(similarity).scatter(1, partner[:, None], best[:, None])
        linked_to = (links.sum(dim=0) != 0).to(similarity.dtype)
        return links + torch.diag_embed(linked_to * similarity.diagonal())

    def forward(self, x: torch.Tensor, concepts: torch.Tensor) -> torch.Tensor:
        """``x``: [N, T, d_feat]; ``concepts``: [N, K] membership (0 / 1; float or bool) of the same N stocks."""
        hidden = last_hidden(self.rnn, x)
        concepts = concepts.to(hidden.dtype)
        if concepts.shape[1] == 0:  # no concept at all: one empty concept, which the mask then drops
            concepts = concepts.new_zeros(concepts.shape[0], 1)

        share = concepts / (concepts * concepts.sum(dim=0, keepdim=True) + 1)
        concept_vectors = share.t() @ hidden  # [K, H]
        explicit = self.fc_es(self._attend(hidden, concept_vectors))
        explicit_back = self.fc_es_back(explicit)
        out_explicit = self.leaky_relu(self.fc_es_fore(explicit))

        residual = hidden - explicit_back
        hidden_concepts = self.hidden_links(residual).t() @ residual  # [N, H]
        implicit = self.fc_is(self._attend(residual, hidden_concepts))
        implicit_back = self.fc_is_back(implicit)
        out_implicit = self.leaky_relu(self.fc_is_fore(implicit))

        out_individual = self.leaky_relu(self.fc_indi(hidden - explicit_back - implicit_back))
        return self.fc_out(out_explicit + out_implicit + out_individual)[:, 0]
