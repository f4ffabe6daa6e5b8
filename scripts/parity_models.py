"""Parity of models/ with Qlib 0.9's LSTM / GRU / ALSTM networks and training step (dev only, random data).

    /work/qlibenv/bin/python scripts/parity_models.py

For each of the six benchmark models (Qlib's nn.Module from pytorch_{lstm,gru,alstm}[_ts].py):

1. the state_dict keys and shapes are the same, and under the same torch seed both constructors produce the
   same initial weights;
2. with the same weights, our network on our device gather (flat rows reshaped to [T, d_feat]) gives Qlib's
   output on Qlib's input (the flat [N, 360] row for the non-TS models, the [N, 20, 20] window for TS);
3. one optimisation step on the same batch with NaN labels: Qlib's wrapper (built with the benchmark's lr, its
   network taken from it) with its ``loss_fn``, clip_grad_value_ 3.0 and its own ``train_optimizer``, against
   ``models.training.masked_mse``, the same clip and ``models.training.make_optimizer(config)``: the optimizer
   settings (lr, betas, eps, weight decay) are equal and the step leaves the same weights.

Prints the largest absolute differences; exits non-zero when one exceeds 1e-5. Then runs scripts/parity_zoo.py
(Transformer, Localformer, TCN, GATs, HIST, IGMTF; see its docstring) and fails when either part fails.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.batches import DeviceSamples  # noqa: E402
from models.config import get_model_config  # noqa: E402
from models.networks import build_network  # noqa: E402
from models.training import make_optimizer, masked_mse  # noqa: E402
from processing.samples import SampleSet  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
import parity_zoo  # noqa: E402

# model -> (module, wrapper class, the wrapper's network attribute)
QLIB = {
    "lstm": ("qlib.contrib.model.pytorch_lstm", "LSTM", "lstm_model"),
    "gru": ("qlib.contrib.model.pytorch_gru", "GRU", "gru_model"),
    "alstm": ("qlib.contrib.model.pytorch_alstm", "ALSTM", "ALSTM_model"),
    "lstm_ts": ("qlib.contrib.model.pytorch_lstm_ts", "LSTM", "LSTM_model"),
    "gru_ts": ("qlib.contrib.model.pytorch_gru_ts", "GRU", "GRU_model"),
    "alstm_ts": ("qlib.contrib.model.pytorch_alstm_ts", "ALSTM", "ALSTM_model"),
}
TOL = 1e-5


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def main() -> int:
    import logging

    from qlib.config import C

    C.logging_level = logging.WARNING  # the wrappers log every setting at INFO
    rng = np.random.default_rng(0)
    worst = 0.0
    for name, (module_name, wrapper_cls, attribute) in QLIB.items():
        module = importlib.import_module(module_name)
        config = get_model_config(name, hidden_size=16)
        kwargs = {"d_feat": config.d_feat, "hidden_size": 16, "num_layers": 2, "dropout": 0.0, "lr": config.lr}
        wrapper = getattr(module, wrapper_cls)(**kwargs, batch_size=config.batch_size, seed=11, GPU=-1)
        theirs = getattr(wrapper, attribute)  # built under torch.manual_seed(11) by the wrapper
        torch.manual_seed(11)
        ours = build_network(config)
        t_state, o_state = theirs.state_dict(), ours.state_dict()
        assert list(t_state) == list(o_state), (name, list(t_state), list(o_state))
        assert all(t_state[k].shape == o_state[k].shape for k in t_state), name
        init_diff = max_diff(t_state, o_state)

        n = 64
        if config.layout == "flat":
            rows = rng.standard_normal((n, config.d_feat * config.step_len), dtype=np.float32)
            windows = np.arange(n)[:, None]
            qlib_input = torch.from_numpy(rows)
        else:
            rows = rng.standard_normal((n + config.step_len, config.d_feat), dtype=np.float32)
            windows = np.arange(n)[:, None] + np.arange(config.step_len)[None, :]
            qlib_input = torch.from_numpy(rows[windows])
        labels = rng.standard_normal(n, dtype=np.float32)
        labels[::7] = np.nan
        samples = SampleSet(
            rows,
            windows,
            labels,
            np.full(n, np.datetime64("2020-01-01")),
            np.full(n, "A"),
            config.layout,
            config.d_feat,
        )
        data = DeviceSamples.from_samples(samples, "cpu")
        our_input = data.inputs(torch.arange(n))
        theirs.eval(), ours.eval()
        with torch.no_grad():
            fwd_diff = float((theirs(qlib_input) - ours(our_input)).abs().max())

        # one training step each, with the wrapper's own optimizer and ours from the config
        theirs.train(), ours.train()
        opt_t = wrapper.train_optimizer
        opt_o = make_optimizer(config, ours)
        for key in ("lr", "betas", "eps", "weight_decay", "amsgrad"):
            assert opt_t.param_groups[0][key] == opt_o.param_groups[0][key], (name, key)
        label_t = torch.from_numpy(labels)
        weight = (torch.ones(n),) if name.endswith("_ts") else ()  # the TS wrappers take all-ones weights
        loss_t = wrapper.loss_fn(theirs(qlib_input), label_t, *weight)
        opt_t.zero_grad()
        loss_t.backward()
        torch.nn.utils.clip_grad_value_(theirs.parameters(), 3.0)
        opt_t.step()
        loss_o = masked_mse(ours(our_input), data.labels)
        opt_o.zero_grad()
        loss_o.backward()
        torch.nn.utils.clip_grad_value_(ours.parameters(), 3.0)
        opt_o.step()
        loss_diff = abs(loss_t.item() - loss_o.item())
        step_diff = max_diff(theirs.state_dict(), ours.state_dict())

        worst = max(worst, init_diff, fwd_diff, loss_diff, step_diff)
        print(
            f"{name:<9} init {init_diff:.2e}  forward {fwd_diff:.2e}  loss {loss_diff:.2e}  step {step_diff:.2e}  "
            f"(Adam lr {opt_o.param_groups[0]['lr']:g}, wd {opt_o.param_groups[0]['weight_decay']:g})"
        )
    print("OK" if worst <= TOL else f"FAIL: largest difference {worst:.2e} > {TOL}")
    zoo = parity_zoo.main()
    return 0 if worst <= TOL and zoo == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
