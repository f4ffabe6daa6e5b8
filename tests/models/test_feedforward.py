"""The fused feed-forward block of the Transformer family (models.nets.feedforward) against PyTorch's layer."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from models.nets import feedforward
from models.nets.dropout import Dropout
from models.nets.feedforward import EncoderLayer


def _pair(dropout: float = 0.0, seed: int = 0) -> tuple[EncoderLayer, nn.TransformerEncoderLayer]:
    torch.manual_seed(seed)
    ours = EncoderLayer(d_model=16, nhead=2, dropout=dropout, dim_feedforward=64)
    torch.manual_seed(seed)
    theirs = nn.TransformerEncoderLayer(d_model=16, nhead=2, dropout=dropout, dim_feedforward=64)
    return ours, theirs


def test_same_parameters_and_initialisation_as_pytorch_layer() -> None:
    ours, theirs = _pair()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


def test_fused_block_matches_forward_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = feedforward._FeedForward.apply
    monkeypatch.setattr(feedforward._FeedForward, "apply", lambda *a: calls.append(1) or real(*a))
    ours, theirs = _pair()
    x = torch.randn(12, 30, 16)  # [T, N, d_model], sequence first as Qlib's layers
    target = torch.randn(12, 30, 16)
    out_ours, out_theirs = ours(x), theirs(x)
    assert calls == [1]
    torch.testing.assert_close(out_ours, out_theirs, rtol=0, atol=1e-6)
    ((out_ours - target) ** 2).mean().backward()
    ((out_theirs - target) ** 2).mean().backward()
    grads = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, rtol=0, atol=1e-6, msg=name)


def test_input_gradient_and_relu_mask() -> None:
    """The input's gradient flows through the fused block, and units the ReLU cut off pass no gradient."""
    ours, theirs = _pair(seed=3)
    x = torch.randn(5, 7, 16, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    ours(x).sum().backward()
    theirs(y).sum().backward()
    torch.testing.assert_close(x.grad, y.grad, rtol=0, atol=1e-6)
    with torch.no_grad():  # a unit whose bias keeps it below zero for every input gets no weight gradient
        ours.linear1.bias[0] = -1e3
    ours.zero_grad()
    ours(x).sum().backward()
    assert torch.count_nonzero(ours.linear1.weight.grad[0]) == 0


def test_active_dropout_runs_pytorch_block(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(feedforward._FeedForward, "apply", lambda *a: calls.append(1))
    ours, theirs = _pair(dropout=0.3)
    assert all(type(m) is Dropout for m in (ours.dropout, ours.dropout1, ours.dropout2))
    x = torch.randn(6, 4, 16)
    torch.manual_seed(7)
    out_ours = ours(x)
    torch.manual_seed(7)
    assert torch.equal(out_ours, theirs(x)) and calls == []  # training with dropout: PyTorch's own block
    ours.eval()
    theirs.eval()
    monkeypatch.undo()
    with torch.no_grad():  # eval: dropout is off, the fused block applies
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)


def test_deep_copies_keep_the_fused_layer() -> None:
    ours, _ = _pair()
    stack = nn.TransformerEncoder(ours, num_layers=2, enable_nested_tensor=False)
    assert all(type(layer) is EncoderLayer for layer in stack.layers)
    assert type(copy.deepcopy(ours)) is EncoderLayer
