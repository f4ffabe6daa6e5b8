"""Parity of the zoo with Qlib 0.9's Transformer / Localformer / TCN / GATs / HIST / IGMTF (dev only).

Run through scripts/parity_models.py (which calls ``main`` here after its own six models), or alone:

    /work/qlibenv/bin/python scripts/parity_zoo.py

For each of the ten configurations, Qlib's own wrapper class (``qlib.contrib.model.pytorch_<name>[_ts]``) is
built with the kwargs of its benchmark YAML (CPU, the same seed), against ``models.config.get_model_config(name)``
and ``models.networks.build_network``, at the benchmark sizes:

1. settings: every hyperparameter the wrapper holds (lr, epochs, early stop, batch size, metric, network sizes,
   base model) equals our configuration's, and its optimizer's parameter group (lr, betas, eps, weight decay)
   equals the one ``models.training.make_optimizer`` builds from the configuration;
2. state_dict: the same names in the same order with the same shapes, the same initial weights;
3. forward (eval mode) on the same data, each side in its own input layout: Qlib's flat [N, 360] rows ([N, 20,
   20] windows for _ts, channels-first for tcn_ts) against our gather [N, T, d_feat]; the graph models one
   trading day at a time (cross-sections of 1, 17 and 40 stocks: GATs also its attention matrix, HIST with a
   concept matrix holding an empty concept and a stock in no concept, IGMTF with a memory of 12 training days);
4. the loss (wrapper ``loss_fn`` against ``masked_mse``, NaN labels included) and the FIRST OPTIMIZER STEP in
   train mode (dropout included: both sides draw from the same seed), with the wrapper's own optimizer against
   ours: the clipped gradients and the weights after the step. The gradients are held to 1e-5; the step to
   ``lr`` / 10: Adam's first step is ``lr * g / (|g| + 1e-8)``, so on entries whose gradient is ~0 (ReLU units)
   a rounding difference of 1e-7 in ``g`` moves the step by up to ``lr``;
5. HIST and IGMTF (``metric="ic"``): the wrapper's ``metric_fn`` on each day against our per-day IC
   (``models.metrics.group_stats``, one call for all days) and its mean (``group_scores``).

Then the base-RNN hand-over (Qlib's fit copies the pretrained LSTM's matching state_dict entries) against
``load_base_weights``.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.config import ModelConfig, get_model_config  # noqa: E402
from models.metrics import group_scores, group_stats  # noqa: E402
from models.nets import GATNet, HISTNet, IGMTFNet, TrainMemory  # noqa: E402
from models.nets.common import load_base_weights  # noqa: E402
from models.networks import LSTMNet, build_network  # noqa: E402
from models.training import make_optimizer, masked_mse  # noqa: E402

TOL = 1e-5
QLIB = "qlib.contrib.model."
SEED = 11
DAY_SIZES = (1, 17, 40)
N = 64  # samples of the batch models' batch

_TRANSFORMER_360 = {"d_feat": 6, "seed": 0}  # workflow_config_{transformer,localformer}_Alpha360.yaml
_TRANSFORMER_158 = {"seed": 0}  # _Alpha158.yaml (n_jobs aside)
_TCN = {"num_layers": 5, "dropout": 0.5, "n_epochs": 200, "early_stop": 20, "batch_size": 2000, "metric": "loss"}
_GRAPH = {"hidden_size": 64, "num_layers": 2, "n_epochs": 200, "lr": 1e-4, "loss": "mse", "base_model": "LSTM"}
# our config name -> (Qlib module, wrapper class, the wrapper's network attribute, the YAML's model kwargs)
WRAPPERS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "transformer": ("transformer", "TransformerModel", "model", _TRANSFORMER_360),
    "localformer": ("localformer", "LocalformerModel", "model", _TRANSFORMER_360),
    "tcn": ("tcn", "TCN", "tcn_model", {**_TCN, "d_feat": 6, "n_chans": 128, "kernel_size": 3, "lr": 1e-3}),
    "gats": ("gats", "GATs", "GAT_model", {**_GRAPH, "d_feat": 6, "dropout": 0.7, "early_stop": 20, "metric": "loss"}),
    "transformer_ts": ("transformer_ts", "TransformerModel", "model", _TRANSFORMER_158),
    "localformer_ts": ("localformer_ts", "LocalformerModel", "model", _TRANSFORMER_158),
    "tcn_ts": ("tcn_ts", "TCN", "TCN_model", {**_TCN, "d_feat": 20, "n_chans": 32, "kernel_size": 7, "lr": 1e-4}),
    "gats_ts": (
        "gats_ts",
        "GATs",
        "GAT_model",
        {**_GRAPH, "d_feat": 20, "dropout": 0.7, "early_stop": 10, "metric": "loss"},
    ),
    "hist": ("hist", "HIST", "HIST_model", {**_GRAPH, "d_feat": 6, "dropout": 0, "early_stop": 20, "metric": "ic"}),
    "igmtf": ("igmtf", "IGMTF", "igmtf_model", {**_GRAPH, "d_feat": 6, "dropout": 0, "early_stop": 20, "metric": "ic"}),
}
# wrapper attribute -> our config field, where the wrapper keeps it
SETTINGS = {
    "lr": "lr",
    "n_epochs": "n_epochs",
    "early_stop": "early_stop",
    "batch_size": "batch_size",
    "dropout": "dropout",
    "d_model": "d_model",
    "n_chans": "n_chans",
    "kernel_size": "kernel_size",
    "num_layers": "num_layers",
    "hidden_size": "hidden_size",
    "d_feat": "d_feat",
    "base_model": "base_model",
    "optimizer": "optimizer",
    "loss": "loss",
    "reg": "weight_decay",
}


def qlib_module(name: str):
    return importlib.import_module(QLIB + f"pytorch_{name}")


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


# Entries whose gradient (with Adam's weight decay) is this small on both sides are rounding noise around an
# exact 0 (e.g. the key bias of an attention layer: softmax ignores a shift shared by all keys); Adam's first step
# lr * g / (|g| + 1e-8) turns any such noise into a step of up to lr, in a direction and size set by the noise.
GRAD_NOISE = 1e-7
# Relative difference of two float32 gradients computed the same way up to summation order.
GRAD_ROUNDING = 1e-3


def step_diff(
    before: dict[str, torch.Tensor],
    weight_decay: float,
    a: dict[str, torch.Tensor],
    b: dict[str, torch.Tensor],
    grads_a: dict[str, torch.Tensor],
    grads_b: dict[str, torch.Tensor],
) -> tuple[float, int, int]:
    """Largest weight difference after the step over entries whose gradients agree to rounding, how many entries
    were noise, and how many had gradients apart by more than rounding (but within ``TOL``, the gradient check).

    Those last are rounding at a ReLU's kink: a unit whose input is within rounding of 0 for one sample is on
    for one side and off for the other (the Transformer family's feed-forward runs its products on oneDNN, in
    another summation order than Qlib's MKL). That moves the unit's gradients by up to TOL, and Adam's first
    step ``lr * g / (|g| + 1e-8)`` (``g`` with Adam's ``weight_decay * w`` added, from the same weights
    ``before``) turns a small or sign-flipped gradient into a different step of up to lr. The step check is for
    the optimizer's settings and update; it holds on every other entry.
    """
    worst, noise, kinked = 0.0, 0, 0
    for k in a:
        diff = (a[k].float() - b[k].float()).abs()
        if k in grads_a:
            decay = weight_decay * before[k].float()
            ga, gb = grads_a[k].float() + decay, grads_b[k].float() + decay
            quiet = (ga.abs() < GRAD_NOISE) & (gb.abs() < GRAD_NOISE)
            apart = ((ga - gb).abs() > GRAD_ROUNDING * torch.maximum(ga.abs(), gb.abs()) + GRAD_NOISE) & ~quiet
            noise += int((quiet & (diff > 0)).sum())
            kinked += int(apart.sum())
            diff = diff.masked_fill(quiet | apart, 0.0)
        worst = max(worst, float(diff.max()) if diff.numel() else 0.0)
    return worst, noise, kinked


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


def nan_labels(rng: np.random.Generator, n: int) -> torch.Tensor:
    labels = rng.standard_normal(n, dtype=np.float32)
    labels[::7] = np.nan
    return torch.from_numpy(labels)


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


def make_wrapper(name: str, config: ModelConfig, gpu: int = -1):
    """Qlib's wrapper with the YAML's kwargs (on the CPU by default), seeded like ours, and its network."""
    module, cls, attribute, kwargs = WRAPPERS[name]
    seed = config.seed if config.seed is not None else SEED
    if module == "hist" and gpu < 0:
        qlib_module("hist").torch = _DeviceOfTensor()
    wrapper = getattr(qlib_module(module), cls)(**{**kwargs, "seed": seed, "GPU": gpu})
    return wrapper, getattr(wrapper, attribute), seed


def check_settings(name: str, wrapper: Any, config: ModelConfig, ours: torch.nn.Module) -> str:
    """The wrapper's hyperparameters and optimizer against our configuration; returns a one-line summary."""
    held = {attr: getattr(wrapper, attr) for attr in SETTINGS if hasattr(wrapper, attr)}
    for attr, value in held.items():
        mine = getattr(config, SETTINGS[attr])
        if attr == "optimizer":
            mine = mine.lower()
        assert mine == value, f"{name}: Qlib's {attr}={value!r}, ours {SETTINGS[attr]}={mine!r}"
    assert (wrapper.metric or "loss") == (config.metric or "loss"), (name, wrapper.metric, config.metric)
    theirs_group = wrapper.train_optimizer.param_groups[0]
    ours_optimizer = make_optimizer(config, ours)
    assert type(ours_optimizer) is type(wrapper.train_optimizer), name
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad"):
        assert ours_optimizer.param_groups[0][key] == theirs_group[key], (name, key)
    return f"{len(held) + 1} settings, optimizer {type(ours_optimizer).__name__} wd {theirs_group['weight_decay']}"


def batches(name: str, config: ModelConfig, rng: np.random.Generator) -> tuple[list, list, list]:
    """Per batch: Qlib's input, ours, labels (the graph models: one cross-section per day)."""
    sizes = DAY_SIZES if config.daily else (N,)
    pairs = [sequence_pair(rng, n, config.d_feat, config.step_len, config.layout) for n in sizes]
    theirs = [p[0] for p in pairs]
    if name == "tcn_ts":  # the _ts wrapper hands [N, F, T] over
        theirs = [t.transpose(1, 2) for t in theirs]
    return theirs, [p[1] for p in pairs], [nan_labels(rng, n) for n in sizes]


def extras(name: str, theirs_net, ours_net, rng: np.random.Generator):
    """The per-day extra arguments of HIST (concept rows) and IGMTF (the training memory), each side's way."""
    if name == "hist":
        member = []
        for n in DAY_SIZES:  # concept 8 is empty, stock 0 of each day is in no concept
            m = (rng.random((n, 9)) < 0.3).astype(np.float32)
            m[:, 8], m[0] = 0.0, 0.0
            member.append(torch.from_numpy(m))
        return [((c,), {}) for c in member], [(c,) for c in member], ""
    if name == "igmtf":
        counts = rng.integers(6, 31, size=12)
        q_train, o_train = sequence_pair(rng, int(counts.sum()), 6, 60, "flat")
        day_of = torch.from_numpy(np.repeat(np.arange(12), counts))
        theirs_net.eval()
        with torch.no_grad():  # Qlib's get_train_hidden: one get_hidden pass per training day
            per_day = [theirs_net(q_train[day_of == d], get_hidden=True) for d in range(12)]
        train_hidden = np.empty(12, dtype=object)  # element by element: numpy would unpack the tensors otherwise
        for d, h in enumerate(per_day):
            train_hidden[d] = h
        day_mean = torch.cat([h.mean(dim=0, keepdim=True) for h in per_day])
        memory = ours_net.train_memory(o_train, day_of)
        diff = max(
            float((memory.day_mean - day_mean).abs().max()),
            float((memory.hidden - TrainMemory.from_days(per_day).hidden).abs().max()),
        )
        kwargs = {"train_hidden": train_hidden, "train_hidden_day": day_mean}
        return [((), kwargs)] * 3, [(memory,)] * 3, f"  memory {diff:.2e}"
    return None, None, ""


def train_step(net: torch.nn.Module, loss: torch.Tensor, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Backward, clip at 3.0 (Qlib's), step; returns the clipped gradients by name (unused parameters left out)."""
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_value_(net.parameters(), 3.0)
    grads = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    opt.step()
    return grads


def check_model(name: str, rng: np.random.Generator) -> float:
    config = get_model_config(name)
    wrapper, theirs, seed = make_wrapper(name, config)
    torch.manual_seed(seed)
    ours = build_network(config)
    summary = check_settings(name, wrapper, config, ours)
    t_state, o_state = theirs.state_dict(), ours.state_dict()
    assert list(t_state) == list(o_state), (name, sorted(set(t_state) ^ set(o_state)))
    assert all(t_state[k].shape == o_state[k].shape for k in t_state), name
    init = max_diff(t_state, o_state)
    ours.load_state_dict(t_state)  # strict: a Qlib checkpoint loads as is

    q_in, o_in, labels = batches(name, config, rng)
    q_extra, o_extra, note = extras(name, theirs, ours, rng)

    def run_theirs(b: int) -> torch.Tensor:
        args, kwargs = q_extra[b] if q_extra else ((), {})
        return theirs(q_in[b], *args, **kwargs).reshape(-1)

    def run_ours(b: int) -> torch.Tensor:
        return ours(o_in[b], *(o_extra[b] if o_extra else ()))

    theirs.eval(), ours.eval()
    with torch.no_grad():
        outputs = [(run_theirs(b), run_ours(b)) for b in range(len(labels))]
    forward = max(float((t - o).abs().max()) for t, o in outputs)
    if name in ("gats", "gats_ts"):
        with torch.no_grad():
            hidden = ours.rnn(o_in[-1])[0][:, -1]
            attention = float((theirs.cal_attention(hidden, hidden) - ours.attention(hidden)).abs().max())
        forward = max(forward, attention)
        note += f"  attention {attention:.2e}"
    ic_diff = 0.0
    if config.metric == "ic":
        wrapper.metric = "ic"
        per_day = [wrapper.metric_fn(t, label).item() for (t, _), label in zip(outputs, labels, strict=True)]
        pred = torch.cat([o for _, o in outputs])
        label = torch.cat(labels)
        group = torch.cat([torch.full((len(x),), d) for d, x in enumerate(labels)])
        _, _, ic, defined = group_stats(pred, label, group, len(labels))
        qlib_defined = [v for v in per_day if np.isfinite(v)]  # Qlib gives NaN on the one-stock day
        ic_diff = max(abs(a - b) for a, b in zip(per_day, ic.tolist(), strict=True) if np.isfinite(a))
        ic_diff = max(ic_diff, abs(float(group_scores(pred, label, group, len(labels))[1]) - np.mean(qlib_defined)))
        assert defined.tolist() == [bool(np.isfinite(v)) for v in per_day], (name, per_day)
        note += f"  ic {ic_diff:.2e}"

    theirs.train(), ours.train()
    last = len(labels) - 1
    torch.manual_seed(SEED + 1)  # the same dropout draws on both sides
    loss_t = wrapper.loss_fn(run_theirs(last), labels[last])
    torch.manual_seed(SEED + 1)
    loss_o = masked_mse(run_ours(last), labels[last])
    before = {k: v.clone() for k, v in theirs.state_dict().items()}  # ours loaded the same weights
    grads_t = train_step(theirs, loss_t, wrapper.train_optimizer)
    grads_o = train_step(ours, loss_o, make_optimizer(config, ours))
    assert list(grads_t) == list(grads_o), (name, sorted(set(grads_t) ^ set(grads_o)))
    loss = abs(loss_t.item() - loss_o.item())
    grad = max_diff(grads_t, grads_o)
    decay = wrapper.train_optimizer.param_groups[0]["weight_decay"]
    step, noise, kinked = step_diff(before, decay, theirs.state_dict(), ours.state_dict(), grads_t, grads_o)
    if noise:
        note += f"  ({noise} entries with gradient noise only)"
    if kinked:
        note += f"  ({kinked} apart by a ReLU kink's rounding, left out of the step check)"
    print(
        f"{name:<15} {summary}  init {init:.2e}  forward {forward:.2e}  loss {loss:.2e}  grad {grad:.2e}  "
        f"step {step:.2e} (lr {config.lr:g}){note}"
    )
    # the step is scaled onto the 1e-5 scale of the rest (held to lr / 10)
    return max(init, forward, loss, grad, ic_diff, step * TOL / (config.lr / 10))


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
    from qlib.config import C

    C.logging_level = logging.WARNING  # the wrappers log every setting at INFO
    rng = np.random.default_rng(1)
    worst = max([check_model(name, rng) for name in WRAPPERS] + [check_base_handover()])
    print("zoo OK" if worst <= TOL else f"zoo FAIL: largest difference {worst:.2e} > {TOL}")
    return 0 if worst <= TOL else 1


if __name__ == "__main__":
    raise SystemExit(main())
