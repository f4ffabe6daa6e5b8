"""Small versions of the zoo configurations and their data, shared by the zoo trainer and scoring tests."""

from __future__ import annotations

import numpy as np

from models.config import ModelConfig, get_model_config
from processing.concepts import Concepts
from processing.samples import SampleSet
from tests.models.synthetic import flat_set, sequence_set

ZOO = ("transformer", "localformer", "tcn", "gats", "transformer_ts", "localformer_ts", "tcn_ts", "gats_ts")
ZOO_ALL = (*ZOO, "hist", "igmtf")


def tiny(name: str, **overrides: object) -> ModelConfig:
    """``name`` shrunk to a few thousand parameters on the synthetic sets' shapes."""
    shape = {"d_feat": 4, "step_len": 6} if name.endswith("_ts") else {"d_feat": 3, "step_len": 8}
    base = {
        "hidden_size": 8,
        "num_layers": 1,
        "d_model": 8,
        "dim_feedforward": 16,
        "n_chans": 8,
        "kernel_size": 2,
        "n_epochs": 2,
        "early_stop": 2,
        "batch_size": 100,
        "lr": 1e-2,
        "seed": 0,
        "dropout": 0.0,
        "k_day": 3,
        "n_neighbor": 4,
    }
    return get_model_config(name, **{**base, **shape, **overrides})


def segments(name: str) -> tuple[SampleSet, SampleSet, SampleSet]:
    make = sequence_set if name.endswith("_ts") else flat_set
    return make(seed=1), make(n_days=15, seed=2), make(n_days=15, seed=3)


def concepts_for(samples: SampleSet, n_concepts: int = 4, seed: int = 0, known: int = 30) -> Concepts:
    """Random memberships of the first ``known`` instruments (the others belong to no concept)."""
    names = np.unique(samples.instruments)[:known]
    rng = np.random.default_rng(seed)
    matrix = (rng.random((len(names), n_concepts)) < 0.4).astype(np.float32)
    return Concepts(names, matrix, tuple(f"c{i}" for i in range(n_concepts)), "test memberships")
