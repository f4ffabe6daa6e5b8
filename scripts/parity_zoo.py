"""Parity of models/nets with Qlib 0.9's Transformer / Localformer / TCN / GATs / HIST / IGMTF networks (dev only).

Run through scripts/parity_models.py (which calls ``main`` here after its own six models), or alone:

    /work/qlibenv/bin/python scripts/parity_zoo.py

For each network, against Qlib's nn.Module from pytorch_<name>[_ts].py on random data:

1. state_dict: the same names in the same order with the same shapes, and under one torch seed both
   constructors give the same initial weights (buffers included);
2. Qlib's state_dict loads into ours (strict); with those weights our network on our input layout (flat rows
   gathered to [N, T, d_feat]) gives Qlib's output on Qlib's own input (flat [N, 360] rows; [N, 20, 20]
   windows for _ts, transposed to [N, 20, 20] channels-first for tcn_ts);
3. one training step on the same batch with NaN labels (the wrapper's ``loss_fn`` + clip_grad_value_ 3.0 +
   Adam with the wrapper's weight decay, against ``masked_mse`` + the same): the loss, the clipped gradients
   (``grad``) and the weights after the step. The step is held to 1e-3, not 1e-5: Adam's first step is
   ``lr * g / (|g| + 1e-8)``, so on the many entries whose gradient is ~0 (ReLU feed-forward and convolution
   units) a float-rounding difference of 1e-7 in ``g`` moves the step by up to ``lr``; the gradient it is
   computed from is held to 1e-5.

The graph models are compared one trading day at a time (cross-sections of 1, 17 and 40 stocks): GATs also on
the attention matrix, HIST with a concept matrix that has an empty concept and a stock in no concept, IGMTF
with a training memory of 12 days of 6-30 stocks (Qlib's ``train_hidden`` object array against our
``TrainMemory`` computed by our own network). The base-RNN hand-over (Qlib's fit copies the LSTM's matching
state_dict entries) is compared with ``load_base_weights``.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.nets import GATNet, HISTNet, IGMTFNet, LocalformerNet, TCNNet, TrainMemory, TransformerNet  # noqa: E402
from models.nets.common import load_base_weights  # noqa: E402
from models.networks import LSTMNet  # noqa: E402
from models.training import masked_mse  # noqa: E402

TOL = 1e-5
STEP_TOL = 1e-3  # see point 3 of the docstring
QLIB = "qlib.contrib.model."
SEED = 11
DAY_SIZES = (1, 17, 40)


def qlib_module(name: str):
    return importlib.import_module(QLIB + f"pytorch_{name}")


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def sequence_pair(rng: np.random.Generator, n: int, d_feat: int, steps: int, layout: str):
    """Qlib's input and ours for n samples: flat rows [n, d_feat * steps] or windows [n, steps, d_feat]."""
    if layout == "flat":
        rows = rng.standard_normal((n, d_feat * steps), dtype=np.float32)
        theirs = torch.from_numpy(rows)
        # the gather of models.batches: [n, d_feat, T] -> [n, T, d_feat]
        ours = theirs.view(n, d_feat, steps).transpose(1, 2).contiguous()
        return theirs, ours
    windows = torch.from_numpy(rng.standard_normal((n, steps, d_feat), dtype=np.float32))
    return windows, windows.clone()


def check_structure(name: str, theirs: torch.nn.Module, ours: torch.nn.Module) -> float:
    t_state, o_state = theirs.state_dict(), ours.state_dict()
    assert list(t_state) == list(o_state), (name, sorted(set(t_state) ^ set(o_state)))
    bad = [k for k in t_state if t_state[k].shape != o_state[k].shape]
    assert not bad, (name, bad)
    init = max_diff(t_state, o_state)
    ours.load_state_dict(t_state)  # strict: a Qlib checkpoint loads as is
    return init


def train_step(net: torch.nn.Module, loss: torch.Tensor, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Backward, clip, step; returns the clipped gradients by name (unused parameters left out)."""
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_value_(net.parameters(), 3.0)
    grads = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    opt.step()
    return grads


def compare(
    name: str,
    theirs: torch.nn.Module,
    ours: torch.nn.Module,
    wrapper_cls: str,
    run_theirs: Callable[[int], torch.Tensor],
    run_ours: Callable[[int], torch.Tensor],
    labels: list[torch.Tensor],
    weight_decay: float = 0.0,
    extra: str = "",
) -> float:
    """Forward on every batch, then one training step on the last; ``run_*`` map a batch number to the output."""
    init = check_structure(name, theirs, ours)
    theirs.eval(), ours.eval()
    with torch.no_grad():
        forward = max(float((run_theirs(b).reshape(-1) - run_ours(b)).abs().max()) for b in range(len(labels)))

    wrapper = getattr(qlib_module(name), wrapper_cls).__new__(getattr(qlib_module(name), wrapper_cls))
    wrapper.loss = "mse"
    theirs.train(), ours.train()
    opt_t = torch.optim.Adam(theirs.parameters(), lr=1e-2, weight_decay=weight_decay)
    opt_o = torch.optim.Adam(ours.parameters(), lr=1e-2, weight_decay=weight_decay)
    last = len(labels) - 1
    loss_t = wrapper.loss_fn(run_theirs(last).reshape(-1), labels[last])
    loss_o = masked_mse(run_ours(last), labels[last])
    grads_t = train_step(theirs, loss_t, opt_t)
    grads_o = train_step(ours, loss_o, opt_o)
    assert list(grads_t) == list(grads_o), (name, sorted(set(grads_t) ^ set(grads_o)))
    loss = abs(loss_t.item() - loss_o.item())
    grad = max_diff(grads_t, grads_o)
    step = max_diff(theirs.state_dict(), ours.state_dict())
    print(
        f"{name:<14} init {init:.2e}  forward {forward:.2e}  loss {loss:.2e}  grad {grad:.2e}  step {step:.2e}{extra}"
    )
    # the step is scaled onto the 1e-5 scale of the rest
    return max(init, forward, loss, grad, step * TOL / STEP_TOL)


def nan_labels(rng: np.random.Generator, n: int) -> torch.Tensor:
    labels = rng.standard_normal(n, dtype=np.float32)
    labels[::7] = np.nan
    return torch.from_numpy(labels)


def check_sequence_models(rng: np.random.Generator) -> float:
    """Transformer, Localformer and TCN, flat (d_feat 6 x 60) and _ts (20 x 20), at the benchmark sizes."""
    worst = 0.0
    n = 64
    for suffix, d_feat, steps, layout in (("", 6, 60, "flat"), ("_ts", 20, 20, "sequence")):
        q_in, o_in = sequence_pair(rng, n, d_feat, steps, layout)
        labels = [nan_labels(rng, n)]
        for kind, wrapper in (("transformer", "TransformerModel"), ("localformer", "LocalformerModel")):
            module = qlib_module(kind + suffix)
            torch.manual_seed(SEED)
            theirs = module.Transformer(d_feat, 64, 2, 2, 0.0)
            torch.manual_seed(SEED)
            ours = (TransformerNet if kind == "transformer" else LocalformerNet)(d_feat, 64, 2, 2, 0.0)
            worst = max(
                worst,
                compare(
                    kind + suffix,
                    theirs,
                    ours,
                    wrapper,
                    lambda b, t=theirs, x=q_in: t(x),
                    lambda b, o=ours, x=o_in: o(x),
                    labels,
                    1e-3,
                ),
            )
        # Alpha360: 5 x 128 channels, kernel 3 (a skip conv in block 0); Alpha158: 5 x 32, kernel 7
        chans, kernel = (128, 3) if layout == "flat" else (32, 7)
        torch.manual_seed(SEED)
        theirs = qlib_module("tcn" + suffix).TCNModel(d_feat, 1, [chans] * 5, kernel, 0.0)
        torch.manual_seed(SEED)
        ours = TCNNet(d_feat, chans, 5, kernel, 0.0)
        tcn_in = q_in if layout == "flat" else q_in.transpose(1, 2)  # the _ts wrapper hands [N, F, T] over
        worst = max(
            worst,
            compare(
                "tcn" + suffix,
                theirs,
                ours,
                "TCN",
                lambda b, t=theirs, x=tcn_in: t(x),
                lambda b, o=ours, x=o_in: o(x),
                labels,
            ),
        )
    return worst


def day_batches(rng: np.random.Generator, d_feat: int, steps: int, layout: str):
    pairs = [sequence_pair(rng, n, d_feat, steps, layout) for n in DAY_SIZES]
    return [p[0] for p in pairs], [p[1] for p in pairs], [nan_labels(rng, n) for n in DAY_SIZES]


def check_gats(rng: np.random.Generator) -> float:
    worst = 0.0
    for suffix, d_feat, steps, layout in (("", 6, 60, "flat"), ("_ts", 20, 20, "sequence")):
        q_days, o_days, labels = day_batches(rng, d_feat, steps, layout)
        torch.manual_seed(SEED)
        theirs = qlib_module("gats" + suffix).GATModel(d_feat, 64, 2, 0.0, "LSTM")
        torch.manual_seed(SEED)
        ours = GATNet(d_feat, 64, 2, 0.0, "LSTM")
        with torch.no_grad():
            # attention matrices of the 40-stock day on the same hidden states (weights loaded in compare)
            check_structure("gats" + suffix, theirs, ours)
            hidden = ours.rnn(o_days[-1])[0][:, -1]
            attention = float((theirs.cal_attention(hidden, hidden) - ours.attention(hidden)).abs().max())
        worst = max(
            worst,
            attention,
            compare(
                "gats" + suffix,
                theirs,
                ours,
                "GATs",
                lambda b, t=theirs, x=q_days: t(x[b]),
                lambda b, o=ours, x=o_days: o(x[b]),
                labels,
                extra=f"  attention {attention:.2e}",
            ),
        )
    return worst


def concept_matrices(rng: np.random.Generator) -> list[torch.Tensor]:
    """Per day [N, 9] memberships: concept 8 is empty, stock 0 of each day is in no concept."""
    out = []
    for n in DAY_SIZES:
        member = (rng.random((n, 9)) < 0.3).astype(np.float32)
        member[:, 8] = 0.0
        member[0] = 0.0
        out.append(torch.from_numpy(member))
    return out


class _DeviceOfTensor(types.ModuleType):
    """``torch`` for Qlib's pytorch_hist, except ``get_device``, which returns the tensor's device.

    HISTModel.forward calls ``torch.device(torch.get_device(x))``; on a CPU tensor ``get_device`` is -1, which
    torch 2.x refuses as a device, so Qlib's HIST runs on CUDA only. Nothing else is changed.
    """

    def __init__(self) -> None:
        super().__init__("torch")

    def __getattr__(self, name: str):
        return getattr(torch, name)

    @staticmethod
    def get_device(x: torch.Tensor) -> torch.device:
        return x.device


def check_hist(rng: np.random.Generator) -> float:
    q_days, o_days, labels = day_batches(rng, 6, 60, "flat")
    concepts = concept_matrices(rng)
    module = qlib_module("hist")
    if not torch.cuda.is_available():
        module.torch = _DeviceOfTensor()
    torch.manual_seed(SEED)
    theirs = module.HISTModel(6, 64, 2, 0.0, "LSTM")
    torch.manual_seed(SEED)
    ours = HISTNet(6, 64, 2, 0.0, "LSTM")
    return compare(
        "hist",
        theirs,
        ours,
        "HIST",
        lambda b: theirs(q_days[b], concepts[b]),
        lambda b: ours(o_days[b], concepts[b]),
        labels,
    )


def check_igmtf(rng: np.random.Generator) -> float:
    q_days, o_days, labels = day_batches(rng, 6, 60, "flat")
    counts = rng.integers(6, 31, size=12)
    q_train, o_train = sequence_pair(rng, int(counts.sum()), 6, 60, "flat")
    day_of = torch.from_numpy(np.repeat(np.arange(12), counts))
    torch.manual_seed(SEED)
    theirs = qlib_module("igmtf").IGMTFModel(6, 64, 2, 0.0, "LSTM")
    torch.manual_seed(SEED)
    ours = IGMTFNet(6, 64, 2, 0.0, "LSTM")
    check_structure("igmtf", theirs, ours)
    theirs.eval()
    with torch.no_grad():  # Qlib's get_train_hidden: one get_hidden pass per training day
        per_day = [theirs(q_train[day_of == d], get_hidden=True) for d in range(12)]
    train_hidden = np.empty(12, dtype=object)  # element by element: numpy would unpack the tensors otherwise
    for d, h in enumerate(per_day):
        train_hidden[d] = h
    train_hidden_day = torch.cat([h.mean(dim=0, keepdim=True) for h in per_day])
    memory = ours.train_memory(o_train, day_of)
    from_days = TrainMemory.from_days(per_day)
    memory_diff = max(
        float((memory.day_mean - train_hidden_day).abs().max()),
        float((memory.hidden - from_days.hidden).abs().max()),
    )
    worst = compare(
        "igmtf",
        theirs,
        ours,
        "IGMTF",
        lambda b: theirs(q_days[b], train_hidden=train_hidden, train_hidden_day=train_hidden_day),
        lambda b: ours(o_days[b], memory),
        labels,
        extra=f"  memory {memory_diff:.2e}",
    )
    return max(worst, memory_diff)


def check_base_handover() -> float:
    """Qlib's fit: every entry of the pretrained LSTM's state_dict that the graph model also has is copied."""
    torch.manual_seed(3)
    base = LSTMNet(6, 64, 2)
    worst = 0.0
    for module, cls, ours_cls in (
        ("gats", "GATModel", GATNet),
        ("hist", "HISTModel", HISTNet),
        ("igmtf", "IGMTFModel", IGMTFNet),
    ):
        torch.manual_seed(SEED)
        theirs = getattr(qlib_module(module), cls)(6, 64, 2, 0.0, "LSTM")
        torch.manual_seed(SEED)
        ours = ours_cls(6, 64, 2, 0.0, "LSTM")
        state = theirs.state_dict()
        state.update({k: v for k, v in base.state_dict().items() if k in state})
        theirs.load_state_dict(state)
        copied = load_base_weights(ours, base.state_dict())
        diff = max_diff(theirs.state_dict(), ours.state_dict())
        parts = ", ".join(sorted({k.split(".")[0] for k in copied}))
        print(f"{module + ' base':<14} copied {len(copied)} entries ({parts})  diff {diff:.2e}")
        worst = max(worst, diff)
    return worst


def main() -> int:
    rng = np.random.default_rng(1)
    worst = max(check_sequence_models(rng), check_gats(rng), check_hist(rng), check_igmtf(rng), check_base_handover())
    print("zoo OK" if worst <= TOL else f"zoo FAIL: largest difference {worst:.2e} > {TOL}")
    return 0 if worst <= TOL else 1


if __name__ == "__main__":
    raise SystemExit(main())
