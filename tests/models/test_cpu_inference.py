"""The CPU scoring forward of the GRU (models.nets.cpu_inference) against PyTorch's own module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.config import get_model_config
from models.nets import cpu_inference
from models.nets.cpu_inference import fast_path_applies, gru_forward, run_rnn
from models.networks import build_network


def _gru(input_size: int, hidden: int, layers: int, batch_first: bool, seed: int = 0) -> nn.GRU:
    torch.manual_seed(seed)
    rnn = nn.GRU(input_size, hidden, layers, batch_first=batch_first).eval()
    with torch.no_grad():  # biases of PyTorch's scale but distinct per gate, so a misplaced one shows
        for name, p in rnn.named_parameters():
            if name.startswith("bias"):
                p.uniform_(-0.5, 0.5)
    return rnn


@pytest.mark.parametrize(
    ("hidden", "layers", "batch_first"), [(64, 2, True), (64, 2, False), (8, 1, True), (16, 3, False)]
)
def test_gru_forward_equals_pytorch_gru(hidden: int, layers: int, batch_first: bool) -> None:
    rnn = _gru(6, hidden, layers, batch_first)
    x = torch.randn(37, 60, 6) if batch_first else torch.randn(60, 37, 6)
    with torch.inference_mode():
        ours = gru_forward(rnn, x)
        theirs, _ = rnn(x)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=0, atol=5e-7)


def test_gru_forward_saturated_gates_stay_finite_and_exact() -> None:
    """Inputs large enough to saturate every gate: 2 * sigmoid(2a) - 1 reaches -1 and 1 as tanh does."""
    rnn = _gru(4, 8, 2, batch_first=True, seed=3)
    x = torch.randn(5, 20, 4) * 200
    with torch.no_grad():
        ours, (theirs, _) = gru_forward(rnn, x), rnn(x)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, theirs, rtol=0, atol=5e-7)


def test_run_rnn_takes_the_fast_path_only_for_cpu_inference(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = cpu_inference.gru_forward
    monkeypatch.setattr(cpu_inference, "gru_forward", lambda rnn, x: calls.append(1) or real(rnn, x))
    rnn = _gru(3, 8, 2, batch_first=True)
    x = torch.randn(4, 7, 3)
    out = run_rnn(rnn, x)  # autograd on: the module, so training gets its gradients
    assert out.requires_grad and calls == []
    with torch.no_grad():
        run_rnn(rnn, x)
    with torch.inference_mode():
        run_rnn(rnn, x)
        run_rnn(_gru(3, 8, 2, batch_first=True).double(), x.double())  # not float32: the module
        run_rnn(nn.LSTM(3, 8, batch_first=True), x)  # oneDNN's fused LSTM is already the fast path
    assert calls == [1, 1]
    dropout = nn.GRU(3, 8, 2, batch_first=True, dropout=0.5).train()
    with torch.no_grad():
        assert not fast_path_applies(dropout, x)  # active dropout between layers: the module applies it
        assert fast_path_applies(dropout.eval(), x)


@pytest.mark.parametrize("model", ["gru", "alstm", "localformer", "gats"])
def test_networks_score_the_same_with_the_fast_path(model: str) -> None:
    """Every network with a GRU inside scores (no autograd) what its autograd forward computes."""
    overrides = {"dim_feedforward": 32} if model == "localformer" else {}
    if model == "gats":
        overrides["base_model"] = "GRU"
    config = get_model_config(model, **overrides)
    torch.manual_seed(0)
    net = build_network(config).eval()
    x = torch.randn(24, config.step_len, config.d_feat)
    reference = net(x).detach()
    with torch.inference_mode():
        fast = net(x)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=2e-6)


def test_tanh_matches_torch_and_keeps_autograd() -> None:
    x = torch.linspace(-30, 30, 600_001)
    with torch.no_grad():
        fast = cpu_inference.tanh(x)
    torch.testing.assert_close(fast, torch.tanh(x), rtol=0, atol=2.5e-7)
    assert fast.min() == -1 and fast.max() == 1
    leaf = torch.linspace(-2, 2, 11, requires_grad=True)
    out = cpu_inference.tanh(leaf)  # autograd on: torch.tanh itself, bit for bit
    assert torch.equal(out, torch.tanh(leaf))
    out.sum().backward()
    torch.testing.assert_close(leaf.grad, 1 - torch.tanh(leaf.detach()) ** 2)
