"""``models.nets.dropout.Dropout`` draws PyTorch's own masks: same outputs, gradients and generator state as
``nn.Dropout`` from one seed, on contiguous, sliced and permuted inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.nets.dropout import SAME_DRAWS, Dropout
from models.nets.tcn import TCNNet


def _inputs() -> list[torch.Tensor]:
    base = torch.randn(6, 5, 40, generator=torch.Generator().manual_seed(3))
    return [base, base[:, :, :33], base.permute(2, 0, 1), base.transpose(1, 2).contiguous().transpose(1, 2)]


@pytest.mark.parametrize("p", [0.5, 0.7, 0.1])
@pytest.mark.parametrize("which", range(4))
def test_same_masks_gradients_and_generator_state(p: float, which: int) -> None:
    results = []
    for module in (nn.Dropout(p), Dropout(p)):
        x = _inputs()[which].clone().requires_grad_(True)
        torch.manual_seed(11)
        y = module(x)
        y.backward(torch.arange(y.numel(), dtype=y.dtype).reshape(y.shape))
        results.append((y.detach(), x.grad, torch.rand(3)))
    (y0, g0, r0), (y1, g1, r1) = results
    assert torch.equal(y0, y1) and torch.equal(g0, g1) and torch.equal(r0, r1)
    assert 0.0 < float((y1 == 0).float().mean()) < 1.0


def test_this_build_takes_the_fast_path() -> None:
    # the CPU this project runs on draws bernoulli_ serially (not MKL's Intel-only path); should a build stop
    # doing so, Dropout falls back to nn.Dropout and this test says why the training step got slower
    assert SAME_DRAWS


def test_evaluation_and_edge_probabilities_are_nn_dropouts() -> None:
    x = torch.randn(4, 9)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0)(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))


def test_tcn_training_step_equals_one_with_torch_dropout() -> None:
    def step(swap: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        torch.manual_seed(5)
        net = TCNNet(d_feat=6, n_chans=8, num_layers=2, kernel_size=3, dropout=0.5)
        assert all(isinstance(block.net[i], Dropout) for block in net.tcn.network for i in (3, 7))
        if swap:  # back to torch's own module in every slot
            for block in net.tcn.network:
                for i in (3, 7):
                    block.net[i] = nn.Dropout(0.5)
        x = torch.randn(16, 20, 6)
        torch.manual_seed(9)
        out = net(x)
        out.pow(2).mean().backward()
        return out.detach(), [p.grad for p in net.parameters()]

    (a, ga), (b, gb) = step(False), step(True)
    assert torch.equal(a, b) and all(torch.equal(x, y) for x, y in zip(ga, gb, strict=True))
