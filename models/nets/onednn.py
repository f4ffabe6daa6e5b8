"""Dense products on oneDNN, PyTorch's own CPU kernel library, instead of the BLAS library (MKL).

MKL takes its AVX2 code path on AMD processors; oneDNN dispatches on the instruction set and runs AVX-512 there.
On the 2-core AMD EPYC this project is measured on, ``[N, 64] x [64, 192]`` runs at 108 GFLOP/s through MKL and
181-249 through oneDNN (N 256-2048), and ``[16384, 64] x [64, 2048]`` at 88 against 180-214. On Intel processors
both run AVX-512. The op is ``torch.ops.mkldnn._linear_pointwise`` (what ``torch.compile`` lowers a CPU linear
to); where a PyTorch build lacks it, ``linear`` is ``torch.nn.functional.linear``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_LINEAR_POINTWISE = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
# A property of the PyTorch build, looked up once: ``linear`` runs once per time step of the scoring GRU.
_AVAILABLE = _LINEAR_POINTWISE is not None and torch.backends.mkldnn.is_available()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T (+ bias)`` for a 2-D CPU float32 ``x``; no autograd of its own (inference, or inside an
    ``autograd.Function``)."""
    if _AVAILABLE:
        return _LINEAR_POINTWISE(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)
