"""Training profiles: ``benchmark`` keeps Qlib's benchmark hyperparameters; ``quick`` (the default on the
synthetic market) trains smaller networks (hidden 32, one layer) for 3 epochs so that `make run` trains all
sixteen models in minutes on two CPU cores;
``cpu`` (the default on real data without CUDA) keeps Qlib's networks and hyperparameters with a bounded
budget (narrower feed-forward / channels for the Transformer, Localformer and TCN), so that the whole graph on
CSI300 ends within the hour on two CPU cores;
``smoke`` trains one epoch of a tiny network, for tests of the wiring.
Every value stays editable in the Dagster launchpad.

A profile is one set of overrides for every model plus, per model type, what that type needs on top (the
Transformer's and TCN's own width fields, a cap on batches or days). The graph models (GATs, HIST, IGMTF)
keep the hidden size and layers of their base LSTM in every profile, so the base's weights fit.
"""

from __future__ import annotations

from typing import Any

from models.config import MODEL_CONFIGS

PROFILES: dict[str, dict[str, Any]] = {
    "benchmark": {},
    # Measured on the synthetic default (2 CPU cores): test IC about 0.12 for lstm after 3 epochs.
    "quick": {"hidden_size": 32, "num_layers": 1, "n_epochs": 3, "early_stop": 3, "eval_train": False, "seed": 0},
    # Qlib's network sizes and hyperparameters; 2 epochs of at most CPU_BATCHES batches of 800 drawn from the
    # train segment by the seeded shuffle (CSI300 2010-2016 has 559 batches per epoch). Measured in the README.
    "cpu": {
        "n_epochs": 2,
        "early_stop": 2,
        "max_batches_per_epoch": 200,
        "eval_train": False,
        "seed": 0,
    },
    # For end-to-end tests of the wiring: one epoch of a tiny network.
    "smoke": {"n_epochs": 1, "early_stop": 1, "hidden_size": 8, "num_layers": 1, "eval_train": False, "seed": 0},
}

# quick: each of these costs about one lstm training or less on the synthetic default (2 CPU cores) and reaches
# a test IC above 0.05 (tests/pipeline/test_planted_signal.py). The Transformer's feed-forward layer is narrowed
# from Qlib's 2048 (on the CPU it costs more than the rest of the network), and the learning rates raised from
# Qlib's 1e-4, which needs far more than three short epochs.
_QUICK_TRANSFORMER = {
    "d_model": 16,
    "dim_feedforward": 64,
    "lr": 1e-3,
    "batch_size": 512,
    "max_batches_per_epoch": 30,
}
# days per epoch (of about 600; the base LSTM is trained already); IGMTF's epoch also recomputes its memory
_QUICK_GATS = {"max_batches_per_epoch": 150}
_QUICK_HIST = {"max_batches_per_epoch": 100}
# cpu: about the samples of the RNNs' 200 batches of 800 per epoch, in each model's own batch size; days for the
# graph models (CSI300: about 300 stocks a day).
_CPU_GRAPH = {"max_batches_per_epoch": 200}
# cpu, the three costliest networks: with Qlib's widths, one Alpha360 Transformer / Localformer / TCN costs
# 60-70 MFLOP per sample (the Transformer's 2048-wide feed-forward, TCN's 128 channels), about 200-400 training
# samples/s on two cores (bench/bench_models.py): scoring the CSI300 test segment alone would take 7 minutes
# each. The cpu profile narrows those layers (feed-forward 256, 32 channels) and trains fewer samples, so the
# whole graph ends within the hour; the benchmark profile (a GPU) keeps Qlib's widths.
_CPU_TRANSFORMER = {"dim_feedforward": 256, "max_batches_per_epoch": 20}  # 2 x 20 x 2048 samples
_CPU_TCN = {"n_chans": 32, "max_batches_per_epoch": 80}  # 2 x 80 x 2000 samples
_SMOKE_TRANSFORMER = {"d_model": 8, "dim_feedforward": 16}

MODEL_PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "benchmark": {},
    "quick": {
        "transformer": _QUICK_TRANSFORMER,
        "localformer": _QUICK_TRANSFORMER,
        "tcn": {"n_chans": 16, "num_layers": 2, "lr": 1e-3, "batch_size": 512, "max_batches_per_epoch": 30},
        "gats": _QUICK_GATS,
        "hist": _QUICK_HIST,
        "igmtf": _QUICK_HIST,
    },
    "cpu": {
        "transformer": _CPU_TRANSFORMER,
        "localformer": _CPU_TRANSFORMER,
        "tcn": _CPU_TCN,
        "gats": _CPU_GRAPH,
        "hist": _CPU_GRAPH,
        "igmtf": _CPU_GRAPH,
    },
    "smoke": {
        "transformer": _SMOKE_TRANSFORMER,
        "localformer": _SMOKE_TRANSFORMER,
        "tcn": {"n_chans": 8, "num_layers": 2},
    },
}
# The _ts Transformer / Localformer batches are 8192 samples (a quarter of the batches keeps the samples); TCN's
# Alpha158 network has 32 channels already.
_CPU_BY_NAME = {
    "transformer_ts": {**_CPU_TRANSFORMER, "max_batches_per_epoch": 5},
    "localformer_ts": {**_CPU_TRANSFORMER, "max_batches_per_epoch": 5},
}


def profile_overrides(profile: str, model: str) -> dict[str, Any]:
    """The overrides ``profile`` applies to the model configuration named ``model`` (a name outside
    ``MODEL_CONFIGS`` gets the profile's common part only)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown training profile {profile!r}; valid: {', '.join(PROFILES)}")
    out = dict(PROFILES[profile])
    config = MODEL_CONFIGS.get(model)
    if config is not None:
        out.update(MODEL_PROFILES[profile].get(config.model, {}))
        if profile == "cpu":
            out.update(_CPU_BY_NAME.get(model, {}))
    return out
