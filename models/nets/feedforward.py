"""The Transformer encoder layer's feed-forward block, fused for the CPU: oneDNN products, ReLU in place.

Qlib's Transformer and Localformer use PyTorch's ``nn.TransformerEncoderLayer`` with a 2048-wide feed-forward:
``linear2(dropout(relu(linear1(x))))``, 16 times the FLOPs of the attention projections, and, for a training
batch of 2048 samples x 60 steps, hidden activations of 1 GB. Two things make that block slow on the CPUs this
project is measured on (AMD EPYC):

* PyTorch's dense products go to MKL, which takes its AVX2 code path on AMD processors; the forward products
  and the input gradients run on oneDNN here (``models.nets.onednn``): 180-214 GFLOP/s against 83-92 for
  ``[16384, 64] x [64, 2048]``. The weight gradients (reductions over the batch) stay with MKL: oneDNN's linear
  would need both operands transposed, which costs more than it saves.
* Autograd allocates the hidden activation twice (the product, then the ReLU's output) and its gradient twice
  (the product's, then the ReLU's); fresh gigabytes are page faults. Here the ReLU runs in place on the product
  and its backward in place on the gradient, as one autograd node.

The arithmetic is the module's: the same products (in another summation order, so results differ by float
rounding), the same ReLU, and ReLU's gradient taken from its output as PyTorch does. It applies to CPU float32
with a ReLU activation and no active dropout (Qlib's Transformer defaults: dropout 0); anything else runs
PyTorch's own block. On Intel processors MKL runs AVX-512 too and the gain is the allocations only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.nets import onednn
from models.nets.dropout import Dropout


class _FeedForward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2):  # noqa: ANN001, ANN205
        hidden = onednn.linear(x, w1, b1).relu_()
        ctx.save_for_backward(x, w1, w2, hidden)
        return onednn.linear(hidden, w2, b2)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, w1, w2, hidden = ctx.saved_tensors
        grad = grad.contiguous()
        grad_w2 = grad.t().mm(hidden)
        grad_b2 = grad.sum(0)
        grad_hidden = onednn.linear(grad, w2.t().contiguous(), None)
        # ReLU's gradient from its output, in place (PyTorch's relu backward is this threshold_backward)
        torch.ops.aten.threshold_backward.grad_input(grad_hidden, hidden, 0.0, grad_input=grad_hidden)
        grad_w1 = grad_hidden.t().mm(x)
        grad_b1 = grad_hidden.sum(0)
        grad_x = onednn.linear(grad_hidden, w1.t().contiguous(), None) if ctx.needs_input_grad[0] else None
        return grad_x, grad_w1, grad_b1, grad_w2, grad_b2


def fused_applies(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> bool:
    active_dropout = layer.training and (layer.dropout.p > 0 or layer.dropout2.p > 0)
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and layer.linear1.weight.dtype == torch.float32
        and layer.activation is F.relu
        and layer.linear1.bias is not None
        and layer.linear2.bias is not None
        and not active_dropout
    )


class EncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` (same sub-modules, parameters and initialisation) whose feed-forward block
    runs fused on the CPU (see the module's docstring), and whose dropouts draw PyTorch's masks more cheaply on
    the CPU (``models.nets.dropout``)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.dropout, self.dropout1, self.dropout2 = (
            Dropout(m.p) for m in (self.dropout, self.dropout1, self.dropout2)
        )

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        if not fused_applies(self, x):
            return super()._ff_block(x)
        flat = x.reshape(-1, x.shape[-1]).contiguous()
        out = _FeedForward.apply(flat, self.linear1.weight, self.linear1.bias, self.linear2.weight, self.linear2.bias)
        return self.dropout2(out.view(x.shape))
