"""Training profiles: ``benchmark`` keeps Qlib's benchmark hyperparameters; ``quick`` (the default on the
synthetic market) trains smaller networks (hidden 32, one layer) for 3 epochs so that `make run` trains all six
models in minutes on two CPU cores;
``cpu`` (the default on real data without CUDA) keeps Qlib's networks and hyperparameters with a bounded
budget, so that the whole graph on CSI300 ends within the hour on two CPU cores;
``smoke`` trains one epoch of a tiny network, for tests of the wiring.
Every value stays editable in the Dagster launchpad."""

from __future__ import annotations

from typing import Any

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


def profile_overrides(profile: str, model: str) -> dict[str, Any]:
    if profile not in PROFILES:
        raise ValueError(f"unknown training profile {profile!r}; valid: {', '.join(PROFILES)}")
    return dict(PROFILES[profile])
