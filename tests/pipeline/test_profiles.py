"""Training profiles: which one a machine gets, and that the cpu profile's budget caps real training."""

from __future__ import annotations

import numpy as np
import pytest

from models.config import base_config_name, get_model_config, model_config_names
from models.training import train_model
from pipeline.profiles import PROFILES, profile_overrides
from pipeline.settings import Settings, choose_profile
from processing.concepts import Concepts
from tests.models.synthetic import flat_set, sequence_set

QLIB = "qlib:/data/qlib_cn"


def test_real_data_without_cuda_gets_the_cpu_profile() -> None:
    profile, note = choose_profile("", QLIB, "auto", cuda=False)
    assert profile == "cpu"
    assert "benchmark" in note and "200 epochs" in note  # says what the GPU profile would do instead
    assert choose_profile("", QLIB, "cpu", cuda=True)[0] == "cpu"  # PIPELINE_DEVICE=cpu on a GPU machine


def test_real_data_with_cuda_gets_the_benchmark_profile() -> None:
    assert choose_profile("", QLIB, "auto", cuda=True)[0] == "benchmark"
    assert choose_profile("", QLIB, "cuda", cuda=False)[0] == "benchmark"


def test_synthetic_gets_quick_and_the_variable_overrides() -> None:
    assert choose_profile("", "synthetic", "auto", cuda=True)[0] == "quick"
    assert choose_profile("Benchmark", QLIB, "auto", cuda=False)[0] == "benchmark"
    assert choose_profile("cpu", "synthetic", "auto", cuda=True)[0] == "cpu"
    s = Settings.from_env({"PIPELINE_SOURCE": QLIB, "PIPELINE_DEVICE": "cpu"})
    assert s.profile == "cpu" and "cpu" in s.profile_note
    with pytest.raises(ValueError, match="PIPELINE_PROFILE must be one of .*, got 'fast'"):
        Settings.from_env({"PIPELINE_PROFILE": "fast"})


def test_cpu_profile_keeps_qlibs_networks() -> None:
    for name in ("lstm", "gru_ts"):
        cfg = get_model_config(name, **profile_overrides("cpu", name))
        bench = get_model_config(name)
        assert (cfg.hidden_size, cfg.num_layers, cfg.lr, cfg.batch_size) == (
            bench.hidden_size,
            bench.num_layers,
            bench.lr,
            bench.batch_size,
        )
        assert cfg.n_epochs < bench.n_epochs and cfg.max_batches_per_epoch > 0


def test_cpu_budget_caps_training_and_logs_epoch_progress() -> None:
    cap = PROFILES["cpu"]["max_batches_per_epoch"]
    small_batch = 2  # enough batches in a small synthetic segment to exceed the cap
    cfg = get_model_config(
        "lstm", **{**profile_overrides("cpu", "lstm"), "d_feat": 3, "step_len": 8, "hidden_size": 8}
    ).replace(batch_size=small_batch)
    train, valid = flat_set(seed=1), flat_set(n_days=15, seed=2)
    assert len(train.labels) // small_batch > cap
    lines: list[str] = []
    result = train_model(cfg, train, valid, device="cpu", log=lines.append)
    assert result.epochs_run <= PROFILES["cpu"]["n_epochs"]
    assert result.samples_per_s > 0
    trained = result.epochs_run * cap * small_batch
    assert any(f"{cap} of {len(train.labels) // small_batch} train batches" in line for line in lines)
    epochs = [line for line in lines if " epoch " in line and "left" in line]
    assert len(epochs) == result.epochs_run and "epoch 1/2: train loss" in epochs[0]
    assert "valid loss" in epochs[0] and f"{cap} batches" in epochs[0]
    # Deterministic with the seed: the same draw of batches gives the same losses.
    again = train_model(cfg, train, valid, device="cpu")
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in result.history]
    assert trained == result.epochs_run * cap * small_batch


NETWORK_FIELDS = ("hidden_size", "num_layers", "d_model", "nhead", "dim_feedforward", "n_chans", "kernel_size")


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_model_has_a_valid_config_in_every_profile(profile: str) -> None:
    for name in model_config_names():
        config = get_model_config(name, **profile_overrides(profile, name))  # validates
        base = base_config_name(config)
        if base:  # the graph models' base weights must fit
            base_config = get_model_config(base, **profile_overrides(profile, base))
            assert (config.hidden_size, config.num_layers) == (base_config.hidden_size, base_config.num_layers)
            assert (config.d_feat, config.step_len, config.handler) == (
                base_config.d_feat,
                base_config.step_len,
                base_config.handler,
            )


# The cpu profile narrows only the widest layers of the three costliest networks (60-70 MFLOP per Alpha360 sample
# with Qlib's widths); everything else of every network is Qlib's.
CPU_NARROWED = {
    "transformer": {"dim_feedforward": 256},
    "localformer": {"dim_feedforward": 256},
    "tcn": {"n_chans": 32},
}


def test_cpu_profile_keeps_every_network_and_bounds_every_epoch() -> None:
    for name in model_config_names():
        cfg = get_model_config(name, **profile_overrides("cpu", name))
        bench = get_model_config(name)
        narrowed = CPU_NARROWED.get(bench.model, {})
        expected = [narrowed.get(f, getattr(bench, f)) for f in NETWORK_FIELDS]
        assert [getattr(cfg, f) for f in NETWORK_FIELDS] == expected, name
        assert (cfg.lr, cfg.batch_size, cfg.weight_decay, cfg.batching) == (
            bench.lr,
            bench.batch_size,
            bench.weight_decay,
            bench.batching,
        )
        assert cfg.max_batches_per_epoch > 0 and cfg.n_epochs <= 2, name
        if not cfg.daily:  # about the RNNs' 200 x 800 samples per epoch; a quarter of it for the Transformers
            low = 40_000 if bench.model in ("transformer", "localformer") else 100_000
            assert low <= cfg.max_batches_per_epoch * cfg.batch_size <= 200_000, name


def test_quick_profile_shrinks_the_costly_networks() -> None:
    transformer = get_model_config("transformer", **profile_overrides("quick", "transformer"))
    assert (transformer.d_model, transformer.dim_feedforward, transformer.num_layers) == (16, 64, 1)
    assert get_model_config("transformer").dim_feedforward == 2048
    tcn = get_model_config("tcn_ts", **profile_overrides("quick", "tcn_ts"))
    assert (tcn.n_chans, tcn.num_layers) == (16, 2)
    assert get_model_config("hist", **profile_overrides("quick", "hist")).max_batches_per_epoch == 100
    assert profile_overrides("quick", "gru_mine") == PROFILES["quick"]  # a name outside MODEL_CONFIGS


@pytest.mark.parametrize("name", model_config_names())
def test_smoke_profile_trains_every_model(name: str) -> None:
    shape = {"d_feat": 4, "step_len": 6} if name.endswith("_ts") else {"d_feat": 3, "step_len": 8}
    config = get_model_config(name, **{**profile_overrides("smoke", name), **shape, "batch_size": 200})
    make = sequence_set if name.endswith("_ts") else flat_set
    train, valid = make(n_days=10, seed=1), make(n_days=5, seed=2)
    concepts = Concepts(np.unique(train.instruments), np.ones((40, 1), np.float32), ("all",), "one concept")
    result = train_model(config, train, valid, device="cpu", concepts=concepts)
    assert result.epochs_run == 1 and np.isfinite(result.history[0]["valid_loss"])
