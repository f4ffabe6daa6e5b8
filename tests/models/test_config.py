"""Named configurations from Qlib's benchmark YAMLs, validation and JSON round trip."""

from __future__ import annotations

import json

import pytest

from models.config import ModelConfig, get_model_config, model_config_names


def test_named_configs_follow_the_benchmark_yamls() -> None:
    assert model_config_names() == ("lstm", "gru", "alstm", "lstm_ts", "gru_ts", "alstm_ts")
    for name in model_config_names():
        c = get_model_config(name)
        assert c.name == name
        assert (c.hidden_size, c.num_layers, c.dropout, c.n_epochs, c.batch_size) == (64, 2, 0.0, 200, 800)
        assert (c.loss, c.metric, c.optimizer, c.clip_value) == ("mse", "loss", "adam", 3.0)
        assert c.seed is None and not c.bf16 and not c.torch_compile
        if name.endswith("_ts"):
            assert (c.layout, c.handler, c.d_feat, c.step_len, c.early_stop) == ("sequence", "alpha158_20", 20, 20, 10)
            assert c.lr == (2e-4 if name == "gru_ts" else 1e-3)
        else:
            assert (c.layout, c.handler, c.d_feat, c.step_len, c.early_stop) == ("flat", "alpha360_rnn", 6, 60, 20)
            assert c.lr == 1e-3
    assert get_model_config("alstm").rnn_type == "GRU"
    assert get_model_config("gru").nan_policy == "drop"  # Qlib's non-TS GRU calls dropna()
    assert get_model_config("lstm").nan_policy == "error"


def test_overrides_and_errors() -> None:
    c = get_model_config("gru_ts", hidden_size=8, seed=3)
    assert (c.hidden_size, c.seed, c.lr) == (8, 3, 2e-4)
    with pytest.raises(ValueError, match="valid names: .*'alstm_ts'"):
        get_model_config("transformer")
    with pytest.raises(ValueError, match=r"unknown model config fields \['hidden'\]; valid fields: .*hidden_size"):
        get_model_config("lstm", hidden=8)
    with pytest.raises(ValueError, match="layout='grid'"):
        get_model_config("lstm", layout="grid")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        get_model_config("lstm", batch_size=0)
    with pytest.raises(ValueError, match="rnn_type='TRANSFORMER' is not one of"):
        get_model_config("alstm", rnn_type="transformer")
    with pytest.raises(ValueError, match="loss='ic' is not one of"):
        get_model_config("alstm", loss="ic")


def test_json_round_trip() -> None:
    c = get_model_config("alstm_ts", seed=7, bf16=True)
    text = json.dumps(c.to_dict())
    assert ModelConfig.from_dict(json.loads(text)) == c
    with pytest.raises(ValueError, match="unknown model config fields"):
        ModelConfig.from_dict({**c.to_dict(), "gpu": 0})
