"""Training profiles: ``benchmark`` keeps Qlib's benchmark hyperparameters; ``quick`` (the default on the
synthetic market) caps the epochs so that `make run` trains all six models in minutes on two CPU cores;
``smoke`` trains one epoch of a tiny network, for tests of the wiring.
Every value stays editable in the Dagster launchpad."""

from __future__ import annotations

from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    "benchmark": {},
    "quick": {"n_epochs": 6, "early_stop": 3},
    # For end-to-end tests of the wiring: one epoch of a tiny network.
    "smoke": {"n_epochs": 1, "early_stop": 1, "hidden_size": 8, "num_layers": 1},
}


def profile_overrides(profile: str, model: str) -> dict[str, Any]:
    if profile not in PROFILES:
        raise ValueError(f"unknown training profile {profile!r}; valid: {', '.join(PROFILES)}")
    return dict(PROFILES[profile])
