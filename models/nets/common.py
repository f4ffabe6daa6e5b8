"""Pieces the zoo networks share: the base recurrent encoder, Qlib's cosine similarity, base-weight loading.

Every zoo network takes ``[N, T, d_feat]`` (oldest step first, the layout ``models.batches`` gathers) and returns
``[N]``, also for N = 1 (Qlib's ``squeeze()`` would return a 0-d tensor there).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from models.nets.cpu_inference import run_rnn

BASE_MODELS = ("GRU", "LSTM")


def base_rnn(base_model: str, d_feat: int, hidden_size: int, num_layers: int, dropout: float) -> nn.RNNBase:
    """The stacked GRU / LSTM (batch first) the graph models put under their cross-section heads."""
    if base_model not in BASE_MODELS:
        raise ValueError(f"unknown base model {base_model!r}; valid: {list(BASE_MODELS)}")
    klass = nn.GRU if base_model == "GRU" else nn.LSTM
    # dropout on a single layer has no effect and only makes PyTorch warn
    return klass(d_feat, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0)


def last_hidden(rnn: nn.RNNBase, x: torch.Tensor) -> torch.Tensor:
    """``[N, T, F] -> [N, H]``: the top layer's output at the newest step."""
    return run_rnn(rnn, x)[:, -1, :]


def cosine_similarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[N, H] x [M, H] -> [N, M]``, with Qlib's guard: 1e-6 is added to the product of the norms.

    A zero row therefore gives 0 rather than NaN (torch's cosine_similarity clamps each norm instead).
    """
    norms = x.norm(dim=1, keepdim=True) * y.norm(dim=1, keepdim=True).t()
    return (x @ y.t()) / (norms + 1e-6)


def masked_softmax(scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 of ``scores`` restricted to the columns where ``keep`` ([M] bool) holds.

    Equal to dropping those columns first (Qlib filters them out, a data-dependent shape); a row with no kept
    column is all zeros, as the empty product Qlib's version then computes.
    """
    masked = scores.masked_fill(~keep[None, :], float("-inf"))
    # by hand rather than torch.softmax: an all-masked row must give zeros, not NaN (nor a NaN gradient)
    peak = masked.amax(dim=1, keepdim=True)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    exp = torch.exp(masked - peak)
    return exp / exp.sum(dim=1, keepdim=True).clamp_min(1e-30)


def load_base_weights(net: nn.Module, base_state: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy the entries of a trained base network's state_dict whose names ``net`` also has (Qlib's fit does this).

    From a LSTMNet / GRUNet that is ``rnn.*`` and ``fc_out.*`` (GATs and HIST have an ``fc_out`` of the same
    shape, so Qlib copies that too). Returns the copied names; a shape mismatch raises ValueError, as Qlib's
    ``load_state_dict`` would.
    """
    own = net.state_dict()
    shared = [name for name in base_state if name in own]
    for name in shared:
        if own[name].shape != base_state[name].shape:
            raise ValueError(f"{name}: base shape {tuple(base_state[name].shape)} != {tuple(own[name].shape)}")
    if not any(name.startswith("rnn.") for name in shared):
        raise ValueError("the base state_dict has no rnn.* entries: not a base RNN of this network")
    with torch.no_grad():
        for name in shared:
            own[name].copy_(base_state[name])
    return shared
