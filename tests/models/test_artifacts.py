"""Artifacts: round trip, content versions, atomic writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from models import artifacts
from models.artifacts import load_artifact, save_artifact
from models.config import get_model_config
from models.scoring import predict
from models.training import train_model
from tests.models.synthetic import sequence_set


@pytest.fixture(scope="module")
def trained():
    config = get_model_config("alstm_ts", hidden_size=8, n_epochs=2, batch_size=100, seed=0, d_feat=4, step_len=6)
    train = sequence_set(n_inst=20, n_days=20, seed=1)
    valid, test = sequence_set(n_inst=20, n_days=5, seed=2), sequence_set(n_inst=20, n_days=5, seed=3)
    return config, train_model(config, train, valid, device="cpu"), test


def test_round_trip_gives_identical_scores(tmp_path: Path, trained) -> None:
    config, result, test = trained
    extra = {"segments": {"train": ["2020-01-01", "2020-02-09"]}, "history": result.history, "nan": float("nan")}
    info = save_artifact(tmp_path / "alstm_ts", result.model, config, extra)
    assert info.path == tmp_path / "alstm_ts" / info.version and len(info.version) == 12
    assert sorted(p.name for p in info.path.iterdir()) == ["config.json", "extra.json", "version.txt", "weights.pt"]
    json.loads((info.path / "extra.json").read_text())  # strict JSON even with NaN inside
    model, loaded_config, loaded_extra = load_artifact(info.path, "cpu")
    assert loaded_config == config
    assert loaded_extra["history"] == json.loads(json.dumps(result.history))
    assert loaded_extra["nan"] == "nan"
    assert not model.training
    np.testing.assert_array_equal(predict(model, test, "cpu", 64), predict(result.model, test, "cpu", 64))


def test_version_names_the_content(tmp_path: Path, trained) -> None:
    config, result, _ = trained
    first = save_artifact(tmp_path, result.model, config, {"run": 1})
    again = save_artifact(tmp_path, result.model, config, {"run": 2})
    assert again == first
    assert json.loads((first.path / "extra.json").read_text()) == {"run": 2}  # extra refreshed in place
    other_config = save_artifact(tmp_path, result.model, config.replace(lr=0.5), {})
    assert other_config.version != first.version
    nudged = type(result.model)(4, 8, 2)
    nudged.load_state_dict(result.model.state_dict())
    with torch.no_grad():
        nudged.fc_out.bias += 1e-6
    assert save_artifact(tmp_path, nudged, config, {}).version != first.version
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_a_failed_write_leaves_no_artifact(tmp_path: Path, trained, monkeypatch: pytest.MonkeyPatch) -> None:
    config, result, _ = trained

    def broken_save(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(artifacts.torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_artifact(tmp_path / "m", result.model, config, {})
    assert list((tmp_path / "m").iterdir()) == []


def test_tampered_weights_are_detected(tmp_path: Path, trained) -> None:
    config, result, _ = trained
    info = save_artifact(tmp_path, result.model, config, {})
    state = torch.load(info.path / "weights.pt", weights_only=True)
    state["fc_out.bias"] += 1.0
    torch.save(state, info.path / "weights.pt")
    with pytest.raises(ValueError, match=re.escape(f"artifact {info.path} is corrupt")):
        load_artifact(info.path)
    with pytest.raises(FileNotFoundError, match="not a model artifact"):
        load_artifact(tmp_path)
