"""Model configurations, with the named settings of Qlib's LSTM / GRU / ALSTM benchmark YAMLs.

``examples/benchmarks/{LSTM,GRU,ALSTM}/workflow_config_*_{Alpha360,Alpha158}.yaml``: hidden 64, 2 layers,
dropout 0, at most 200 epochs, batch 800, MSE loss, early stop on the valid loss. The Alpha360 versions feed
the flat 360-column row (d_feat 6 x 60 days, early stop 20); the Alpha158 versions feed 20-day windows of 20
selected Alpha158 columns (TSDatasetH, early stop 10, lr 2e-4 for GRU).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from processing.samples import LAYOUTS

MODEL_TYPES = ("lstm", "gru", "alstm")
NAN_POLICIES = ("error", "drop")
OPTIMIZERS = ("adam", "gd")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and retrain one model; JSON-serialisable through ``to_dict``.

    ``nan_policy`` says what training does with samples whose inputs are not finite: ``"drop"`` removes them
    together with samples whose label is NaN (Qlib's non-TS GRU calls ``dropna()`` on train and valid);
    ``"error"`` refuses them with a ValueError (Qlib's other models would train on NaN and corrupt the weights;
    the YAML's Fillna processor makes inputs finite, so this only fires on a misconfigured pipeline). NaN labels
    are always left out of the loss.
    """

    name: str = "lstm"
    model: str = "lstm"
    d_feat: int = 6
    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.0
    n_epochs: int = 200
    lr: float = 1e-3
    batch_size: int = 800
    early_stop: int = 20
    loss: str = "mse"
    metric: str = "loss"
    optimizer: str = "adam"
    clip_value: float = 3.0  # clip_grad_value_ (element-wise), as Qlib
    seed: int | None = None  # None: a fresh seed is drawn and reported in TrainResult.seed
    rnn_type: str = "GRU"  # ALSTM only; Qlib's wrapper always builds the GRU variant
    layout: str = "flat"  # "flat" (DatasetH row reshaped to [T, d_feat]) or "sequence" (TSDatasetH window)
    step_len: int = 60  # time steps the network sees: T of the flat row, or the window length
    handler: str = "alpha360_rnn"  # processing handler config that produces the samples
    nan_policy: str = "error"
    eval_train: bool = True  # evaluate the train loss after every epoch, as Qlib (costs one forward pass)
    # Cap on train batches per epoch, 0 = every batch (Qlib). The batches are the first ones of the epoch's
    # seeded shuffle, so a capped epoch is a deterministic random draw from the whole train segment.
    max_batches_per_epoch: int = 0
    bf16: bool = False  # bfloat16 autocast, CUDA only
    torch_compile: bool = False  # torch.compile the network, CUDA only

    def __post_init__(self) -> None:
        _check_choice("model", self.model, MODEL_TYPES)
        _check_choice("layout", self.layout, LAYOUTS)
        _check_choice("nan_policy", self.nan_policy, NAN_POLICIES)
        _check_choice("optimizer", self.optimizer.lower(), OPTIMIZERS)
        _check_choice("loss", self.loss, ("mse",))
        _check_choice("metric", self.metric, ("loss", ""))
        _check_choice("rnn_type", self.rnn_type.upper(), ("GRU", "LSTM"))
        for name in ("d_feat", "hidden_size", "num_layers", "n_epochs", "batch_size", "early_stop", "step_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.max_batches_per_epoch, int) or self.max_batches_per_epoch < 0:
            raise ValueError(f"max_batches_per_epoch must be an integer >= 0, got {self.max_batches_per_epoch!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not self.clip_value > 0:
            raise ValueError(f"clip_value must be positive, got {self.clip_value!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        unknown = sorted(set(data) - set(field_names()))
        if unknown:
            raise ValueError(f"unknown model config fields {unknown}; valid fields: {field_names()}")
        return cls(**data)

    def replace(self, **overrides: Any) -> ModelConfig:
        unknown = sorted(set(overrides) - set(field_names()))
        if unknown:
            raise ValueError(f"unknown model config fields {unknown}; valid fields: {field_names()}")
        return dataclasses.replace(self, **overrides)


def _check_choice(name: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not one of {list(valid)}")


def field_names() -> list[str]:
    return [f.name for f in fields(ModelConfig)]


_ALPHA360 = {"layout": "flat", "d_feat": 6, "step_len": 60, "handler": "alpha360_rnn", "early_stop": 20, "lr": 1e-3}
_ALPHA158_20 = {
    "layout": "sequence",
    "d_feat": 20,
    "step_len": 20,
    "handler": "alpha158_20",
    "early_stop": 10,
    "lr": 1e-3,
}

MODEL_CONFIGS: dict[str, ModelConfig] = {
    "lstm": ModelConfig(name="lstm", model="lstm", **_ALPHA360),
    # Qlib's non-TS GRU drops every train / valid row with a NaN feature or label.
    "gru": ModelConfig(name="gru", model="gru", nan_policy="drop", **_ALPHA360),
    "alstm": ModelConfig(name="alstm", model="alstm", rnn_type="GRU", **_ALPHA360),
    "lstm_ts": ModelConfig(name="lstm_ts", model="lstm", **_ALPHA158_20),
    "gru_ts": ModelConfig(name="gru_ts", model="gru", **{**_ALPHA158_20, "lr": 2e-4}),
    "alstm_ts": ModelConfig(name="alstm_ts", model="alstm", rnn_type="GRU", **_ALPHA158_20),
}


def model_config_names() -> tuple[str, ...]:
    return tuple(MODEL_CONFIGS)


def get_model_config(name: str, **overrides: Any) -> ModelConfig:
    """The named benchmark configuration (lstm, gru, alstm, lstm_ts, gru_ts, alstm_ts) with ``overrides``."""
    try:
        base = MODEL_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model config {name!r}; valid names: {list(MODEL_CONFIGS)}") from None
    return base.replace(**overrides) if overrides else base


def model_handlers() -> tuple[str, ...]:
    """The handlers the model configurations train on, in configuration order (one fitted handler asset each)."""
    return tuple(dict.fromkeys(c.handler for c in MODEL_CONFIGS.values()))
