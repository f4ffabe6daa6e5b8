"""Model configurations, with the named settings of Qlib's benchmark YAMLs (and, where a YAML is silent, the
defaults of the model class in ``qlib/contrib/model/pytorch_<name>[_ts].py``).

``examples/benchmarks/<Model>/workflow_config_<name>_{Alpha360,Alpha158}.yaml``. The Alpha360 versions feed the
flat 360-column row (d_feat 6 x 60 days, handler ``alpha360_rnn``); the Alpha158 versions (``_ts``) feed 20-day
windows of 20 selected Alpha158 columns (TSDatasetH, d_feat 20, handler ``alpha158_20``).

* LSTM / GRU / ALSTM: hidden 64, 2 layers, dropout 0, at most 200 epochs, batch 800, early stop 20 (10 for
  ``_ts``), lr 1e-3 (2e-4 for GRU ``_ts``).
* Transformer / Localformer: the YAMLs set only d_feat and seed 0; the class defaults are d_model 64, nhead 2,
  2 layers, dropout 0, 100 epochs, lr 1e-4, early stop 5, batch 2048 (8192 in ``_ts``), Adam with weight decay
  (``reg``) 1e-3.
* TCN: 5 layers, dropout 0.5, 200 epochs, early stop 20, batch 2000; Alpha360 128 channels, kernel 3, lr 1e-3;
  Alpha158 32 channels, kernel 7, lr 1e-4.
* GATs: hidden 64, 2 layers, dropout 0.7, 200 epochs, lr 1e-4, early stop 20 (10 for ``_ts``), base LSTM; one
  trading day per batch (days shuffled each epoch; in date order for ``_ts``, Qlib's DailyBatchSampler).
* HIST / IGMTF (Alpha360 only): hidden 64, 2 layers, dropout 0, 200 epochs, lr 1e-4, early stop 20, early
  stopping on the valid IC, base LSTM, days shuffled; IGMTF k_day 10, n_neighbor 10 (its forward's defaults).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from processing.samples import LAYOUTS

RNN_MODELS = ("lstm", "gru", "alstm")
# Networks whose forward mixes the stocks of one trading day: they are trained, evaluated and scored one day's
# cross-section at a time, and start from a trained base RNN.
CROSS_SECTIONAL = ("gats", "hist", "igmtf")
MODEL_TYPES = (*RNN_MODELS, "transformer", "localformer", "tcn", *CROSS_SECTIONAL)
NAN_POLICIES = ("error", "drop")
OPTIMIZERS = ("adam", "gd")
METRICS = ("loss", "", "ic")  # "" is Qlib's spelling of "loss"
# "samples": shuffled batches of batch_size samples; "days": one trading day per batch, the days shuffled each
# epoch (Qlib's get_daily_inter(shuffle=True)); "days_in_order": one day per batch in date order (DailyBatchSampler).
BATCHINGS = ("samples", "days", "days_in_order")
BASE_MODELS = ("LSTM", "GRU")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and retrain one model; JSON-serialisable through ``to_dict``.

    ``nan_policy`` says what training does with samples whose inputs are not finite: ``"drop"`` removes them
    together with samples whose label is NaN (Qlib's non-TS GRU calls ``dropna()`` on train and valid);
    ``"error"`` refuses them with a ValueError (Qlib's other models would train on NaN and corrupt the weights;
    the YAML's Fillna processor makes inputs finite, so this only fires on a misconfigured pipeline). NaN labels
    are always left out of the loss.

    Every field is a plain scalar (the Launchpad form is generated from them); ``relevant_fields`` names the
    ones a model type reads.
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
    metric: str = "loss"  # early stopping on -valid loss ("loss", "") or on the mean daily / per-batch valid IC
    optimizer: str = "adam"
    clip_value: float = 3.0  # clip_grad_value_ (element-wise), as Qlib
    seed: int | None = None  # None: a fresh seed is drawn and reported in TrainResult.seed
    rnn_type: str = "GRU"  # ALSTM only; Qlib's wrapper always builds the GRU variant
    layout: str = "flat"  # "flat" (DatasetH row reshaped to [T, d_feat]) or "sequence" (TSDatasetH window)
    step_len: int = 60  # time steps the network sees: T of the flat row, or the window length
    handler: str = "alpha360_rnn"  # processing handler config that produces the samples
    nan_policy: str = "error"
    eval_train: bool = True  # evaluate the train loss after every epoch, as Qlib (costs one forward pass)
    # Cap on train batches (days, for the daily batchings) per epoch, 0 = every batch (Qlib). The batches are the
    # first ones of the epoch's seeded shuffle, so a capped epoch is a deterministic random draw from the whole
    # train segment.
    max_batches_per_epoch: int = 0
    bf16: bool = False  # bfloat16 autocast, CUDA only
    torch_compile: bool = False  # torch.compile the network, CUDA only
    # -- added with the rest of Qlib's zoo (an artifact's config.json leaves them out while at their defaults) --
    weight_decay: float = 0.0  # Qlib's `reg`: the optimizer's weight_decay (Transformer / Localformer 1e-3)
    batching: str = "samples"  # see BATCHINGS
    d_model: int = 64  # Transformer / Localformer width
    nhead: int = 2  # Transformer / Localformer attention heads
    # Transformer / Localformer feed-forward width: Qlib keeps torch's default 2048 (the CPU cost of these models)
    dim_feedforward: int = 2048
    n_chans: int = 128  # TCN channels per layer (num_layers layers)
    kernel_size: int = 3  # TCN convolution width
    base_model: str = ""  # GATs / HIST / IGMTF: the trained base RNN ("LSTM" or "GRU") whose weights they start from
    k_day: int = 10  # IGMTF: most similar training days read
    n_neighbor: int = 10  # IGMTF: most similar training stocks per stock

    def __post_init__(self) -> None:
        _check_choice("model", self.model, MODEL_TYPES)
        _check_choice("layout", self.layout, LAYOUTS)
        _check_choice("nan_policy", self.nan_policy, NAN_POLICIES)
        _check_choice("optimizer", self.optimizer.lower(), OPTIMIZERS)
        _check_choice("loss", self.loss, ("mse",))
        _check_choice("metric", self.metric, METRICS)
        _check_choice("rnn_type", self.rnn_type.upper(), ("GRU", "LSTM"))
        _check_choice("batching", self.batching, BATCHINGS)
        positive = ("d_feat", "hidden_size", "num_layers", "n_epochs", "batch_size", "early_stop", "step_len")
        for name in (*positive, "d_model", "nhead", "dim_feedforward", "n_chans", "kernel_size", "k_day", "n_neighbor"):
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
        if isinstance(self.weight_decay, bool) or not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {self.seed!r}")
        if self.model in ("transformer", "localformer"):
            if self.d_model % 2:
                raise ValueError(f"d_model must be even (sin / cos position code), got {self.d_model}")
            if self.d_model % self.nhead:
                raise ValueError(f"d_model={self.d_model} must be a multiple of nhead={self.nhead}")
        if self.model in CROSS_SECTIONAL:
            _check_choice("base_model", self.base_model, BASE_MODELS)
            if self.batching == "samples":
                raise ValueError(
                    f"batching='samples' mixes trading days, but model {self.model!r} attends over one day's "
                    "stocks; use 'days' or 'days_in_order'"
                )
        elif self.base_model:
            raise ValueError(f"base_model={self.base_model!r} is only read by {list(CROSS_SECTIONAL)}; leave it ''")

    @property
    def daily(self) -> bool:
        """Batches are trading days (training and evaluation per day)."""
        return self.batching != "samples"

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


ZOO_FIELDS = (
    "weight_decay",
    "batching",
    "d_model",
    "nhead",
    "dim_feedforward",
    "n_chans",
    "kernel_size",
    "base_model",
    "k_day",
    "n_neighbor",
)


def stored_dict(config: ModelConfig) -> dict[str, Any]:
    """``to_dict`` without the zoo's fields that hold their defaults: the form artifacts store and hash, so an
    LSTM / GRU / ALSTM artifact written before those fields existed keeps its version (and still loads)."""
    defaults = ModelConfig()
    return {k: v for k, v in config.to_dict().items() if k not in ZOO_FIELDS or v != getattr(defaults, k)}


_TRAINING_FIELDS = (
    "name",
    "model",
    "handler",
    "layout",
    "d_feat",
    "step_len",
    "n_epochs",
    "lr",
    "optimizer",
    "weight_decay",
    "early_stop",
    "metric",
    "loss",
    "clip_value",
    "seed",
    "batching",
    "max_batches_per_epoch",
    "nan_policy",
    "eval_train",
    "bf16",
    "torch_compile",
)
_NETWORK_FIELDS = {
    "lstm": ("hidden_size", "num_layers", "dropout"),
    "gru": ("hidden_size", "num_layers", "dropout"),
    "alstm": ("hidden_size", "num_layers", "dropout", "rnn_type"),
    "transformer": ("d_model", "nhead", "dim_feedforward", "num_layers", "dropout"),
    "localformer": ("d_model", "nhead", "dim_feedforward", "num_layers", "dropout"),
    "tcn": ("n_chans", "kernel_size", "num_layers", "dropout"),
    "gats": ("hidden_size", "num_layers", "dropout", "base_model"),
    "hist": ("hidden_size", "num_layers", "dropout", "base_model"),
    "igmtf": ("hidden_size", "num_layers", "dropout", "base_model", "k_day", "n_neighbor"),
}


def network_summary(config: ModelConfig) -> str:
    """The network fields ``config``'s model type reads, as ``name value`` pairs (for log lines)."""
    return ", ".join(f"{name} {getattr(config, name)}" for name in _NETWORK_FIELDS[config.model])


def relevant_fields(config: ModelConfig) -> list[str]:
    """The fields ``config``'s model type reads, in the dataclass's order (a form can show only these).

    ``batch_size`` counts where batches are samples: the daily batchings train, evaluate and score one trading
    day at a time.
    """
    wanted = set(_TRAINING_FIELDS) | set(_NETWORK_FIELDS[config.model])
    if not config.daily:
        wanted.add("batch_size")
    return [name for name in field_names() if name in wanted]


_ALPHA360 = {"layout": "flat", "d_feat": 6, "step_len": 60, "handler": "alpha360_rnn", "early_stop": 20, "lr": 1e-3}
_ALPHA158_20 = {
    "layout": "sequence",
    "d_feat": 20,
    "step_len": 20,
    "handler": "alpha158_20",
    "early_stop": 10,
    "lr": 1e-3,
}
# pytorch_transformer[_ts].py / pytorch_localformer[_ts].py class defaults; the YAMLs add only seed 0.
_TRANSFORMER = {
    "d_model": 64,
    "nhead": 2,
    "num_layers": 2,
    "dropout": 0.0,
    "n_epochs": 100,
    "lr": 1e-4,
    "early_stop": 5,
    "weight_decay": 1e-3,
    "seed": 0,
}
# workflow_config_tcn_Alpha360.yaml / _Alpha158.yaml (no weight decay: the TCN wrappers pass none)
_TCN = {"num_layers": 5, "dropout": 0.5, "n_epochs": 200, "early_stop": 20, "batch_size": 2000}
# workflow_config_{gats,hist,igmtf}_Alpha360.yaml: hidden 64, 2 layers, lr 1e-4, base LSTM, one day per batch
_GRAPH = {"hidden_size": 64, "num_layers": 2, "n_epochs": 200, "lr": 1e-4, "base_model": "LSTM", "batching": "days"}

MODEL_CONFIGS: dict[str, ModelConfig] = {
    "lstm": ModelConfig(name="lstm", model="lstm", **_ALPHA360),
    # Qlib's non-TS GRU drops every train / valid row with a NaN feature or label.
    "gru": ModelConfig(name="gru", model="gru", nan_policy="drop", **_ALPHA360),
    "alstm": ModelConfig(name="alstm", model="alstm", rnn_type="GRU", **_ALPHA360),
    "lstm_ts": ModelConfig(name="lstm_ts", model="lstm", **_ALPHA158_20),
    "gru_ts": ModelConfig(name="gru_ts", model="gru", **{**_ALPHA158_20, "lr": 2e-4}),
    "alstm_ts": ModelConfig(name="alstm_ts", model="alstm", rnn_type="GRU", **_ALPHA158_20),
    "transformer": ModelConfig(
        name="transformer", model="transformer", **{**_ALPHA360, **_TRANSFORMER}, batch_size=2048
    ),
    "localformer": ModelConfig(
        name="localformer", model="localformer", **{**_ALPHA360, **_TRANSFORMER}, batch_size=2048
    ),
    "tcn": ModelConfig(name="tcn", model="tcn", **{**_ALPHA360, **_TCN, "lr": 1e-3}, n_chans=128, kernel_size=3),
    "gats": ModelConfig(name="gats", model="gats", **{**_ALPHA360, **_GRAPH}, dropout=0.7),
    "transformer_ts": ModelConfig(
        name="transformer_ts", model="transformer", **{**_ALPHA158_20, **_TRANSFORMER}, batch_size=8192
    ),
    "localformer_ts": ModelConfig(
        name="localformer_ts", model="localformer", **{**_ALPHA158_20, **_TRANSFORMER}, batch_size=8192
    ),
    "tcn_ts": ModelConfig(
        name="tcn_ts", model="tcn", **{**_ALPHA158_20, **_TCN, "lr": 1e-4, "early_stop": 20}, n_chans=32, kernel_size=7
    ),
    # pytorch_gats_ts.py: DailyBatchSampler yields the days in date order, every epoch.
    "gats_ts": ModelConfig(
        name="gats_ts", model="gats", **{**_ALPHA158_20, **_GRAPH, "batching": "days_in_order"}, dropout=0.7
    ),
    "hist": ModelConfig(name="hist", model="hist", **{**_ALPHA360, **_GRAPH}, metric="ic"),
    "igmtf": ModelConfig(name="igmtf", model="igmtf", **{**_ALPHA360, **_GRAPH}, metric="ic", k_day=10, n_neighbor=10),
}


def model_config_names() -> tuple[str, ...]:
    return tuple(MODEL_CONFIGS)


def get_model_config(name: str, **overrides: Any) -> ModelConfig:
    """The named benchmark configuration (see ``MODEL_CONFIGS``) with ``overrides``."""
    try:
        base = MODEL_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model config {name!r}; valid names: {list(MODEL_CONFIGS)}") from None
    return base.replace(**overrides) if overrides else base


def model_handlers() -> tuple[str, ...]:
    """The handlers the model configurations train on, in configuration order (one fitted handler asset each)."""
    return tuple(dict.fromkeys(c.handler for c in MODEL_CONFIGS.values()))


def base_config_name(config: ModelConfig) -> str | None:
    """The configuration whose trained network ``config`` starts from (GATs / HIST / IGMTF), else None.

    It is this pipeline's own ``base_model`` RNN (LSTM -> ``lstm``, GRU -> ``gru``) on the same handler and
    layout: ``gats`` / ``hist`` / ``igmtf`` -> ``lstm``, ``gats_ts`` -> ``lstm_ts``.
    """
    if config.model not in CROSS_SECTIONAL:
        return None
    kind = config.base_model.lower()
    for name, candidate in MODEL_CONFIGS.items():
        if candidate.model == kind and candidate.handler == config.handler and candidate.layout == config.layout:
            return name
    raise ValueError(
        f"no {kind} configuration on handler {config.handler!r} ({config.layout} layout) to serve as the base of "
        f"model {config.name!r}; valid base models: {list(BASE_MODELS)}"
    )
