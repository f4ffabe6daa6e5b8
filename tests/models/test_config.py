"""Named configurations from Qlib's benchmark YAMLs, validation and JSON round trip."""

from __future__ import annotations

import json

import pytest

from models.config import (
    ModelConfig,
    base_config_name,
    get_model_config,
    model_config_names,
    network_summary,
    relevant_fields,
    stored_dict,
)
from models.networks import build_network

RNNS = ("lstm", "gru", "alstm", "lstm_ts", "gru_ts", "alstm_ts")


def test_named_configs_follow_the_benchmark_yamls() -> None:
    assert model_config_names()[:6] == RNNS
    for name in RNNS:
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
    with pytest.raises(ValueError, match="valid names: .*'alstm_ts'.*'igmtf'"):
        get_model_config("informer")
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


# (model, handler, batching, batch_size, lr, n_epochs, early_stop, weight_decay, dropout, metric, seed) from
# examples/benchmarks/<Model>/workflow_config_*.yaml, else the class defaults of pytorch_<name>[_ts].py
ZOO = {
    "transformer": ("transformer", "alpha360_rnn", "samples", 2048, 1e-4, 100, 5, 1e-3, 0.0, "loss", 0),
    "localformer": ("localformer", "alpha360_rnn", "samples", 2048, 1e-4, 100, 5, 1e-3, 0.0, "loss", 0),
    "tcn": ("tcn", "alpha360_rnn", "samples", 2000, 1e-3, 200, 20, 0.0, 0.5, "loss", None),
    "gats": ("gats", "alpha360_rnn", "days", 800, 1e-4, 200, 20, 0.0, 0.7, "loss", None),
    "transformer_ts": ("transformer", "alpha158_20", "samples", 8192, 1e-4, 100, 5, 1e-3, 0.0, "loss", 0),
    "localformer_ts": ("localformer", "alpha158_20", "samples", 8192, 1e-4, 100, 5, 1e-3, 0.0, "loss", 0),
    "tcn_ts": ("tcn", "alpha158_20", "samples", 2000, 1e-4, 200, 20, 0.0, 0.5, "loss", None),
    "gats_ts": ("gats", "alpha158_20", "days_in_order", 800, 1e-4, 200, 10, 0.0, 0.7, "loss", None),
    "hist": ("hist", "alpha360_rnn", "days", 800, 1e-4, 200, 20, 0.0, 0.0, "ic", None),
    "igmtf": ("igmtf", "alpha360_rnn", "days", 800, 1e-4, 200, 20, 0.0, 0.0, "ic", None),
}


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_configs_follow_qlib(name: str) -> None:
    c = get_model_config(name)
    model, handler, batching, batch, lr, epochs, early, decay, dropout, metric, seed = ZOO[name]
    assert (c.model, c.handler, c.batching, c.batch_size, c.lr) == (model, handler, batching, batch, lr)
    assert (c.n_epochs, c.early_stop, c.weight_decay, c.dropout, c.metric, c.seed) == (
        epochs,
        early,
        decay,
        dropout,
        metric,
        seed,
    )
    assert (c.optimizer, c.loss, c.clip_value) == ("adam", "mse", 3.0)
    if handler == "alpha158_20":
        assert (c.layout, c.d_feat, c.step_len) == ("sequence", 20, 20)
    else:
        assert (c.layout, c.d_feat, c.step_len) == ("flat", 6, 60)
    if model in ("transformer", "localformer"):
        assert (c.d_model, c.nhead, c.num_layers, c.dim_feedforward) == (64, 2, 2, 2048)
    if model == "tcn":
        assert (c.n_chans, c.kernel_size, c.num_layers) == ((128, 3, 5) if handler == "alpha360_rnn" else (32, 7, 5))
    if model in ("gats", "hist", "igmtf"):
        assert (c.hidden_size, c.num_layers, c.base_model) == (64, 2, "LSTM")
    if model == "igmtf":
        assert (c.k_day, c.n_neighbor) == (10, 10)


def test_model_config_names_cover_the_zoo() -> None:
    assert set(model_config_names()) == {*RNNS, *ZOO}
    classes = {"transformer": "TransformerNet", "localformer": "LocalformerNet", "tcn": "TCNNet", "gats": "GATNet"}
    classes |= {"hist": "HISTNet", "igmtf": "IGMTFNet", "lstm": "LSTMNet", "gru": "GRUNet", "alstm": "ALSTMNet"}
    for name in model_config_names():
        config = get_model_config(name)
        assert type(build_network(config)).__name__ == classes[config.model], name


def test_base_config_names() -> None:
    expected = {"gats": "lstm", "hist": "lstm", "igmtf": "lstm", "gats_ts": "lstm_ts"}
    for name in model_config_names():
        assert base_config_name(get_model_config(name)) == expected.get(name), name
    assert base_config_name(get_model_config("gats", base_model="GRU")) == "gru"
    assert base_config_name(get_model_config("gats_ts", base_model="GRU")) == "gru_ts"


def test_relevant_fields_name_what_each_model_reads() -> None:
    def fields(name: str) -> set[str]:
        return set(relevant_fields(get_model_config(name)))

    assert {"d_model", "nhead", "weight_decay", "batch_size"} <= fields("transformer")
    assert not {"hidden_size", "n_chans", "base_model", "k_day"} & fields("transformer")
    assert {"n_chans", "kernel_size", "num_layers"} <= fields("tcn_ts") and "d_model" not in fields("tcn_ts")
    assert {"base_model", "hidden_size", "batching"} <= fields("gats") and "batch_size" not in fields("gats")
    assert {"k_day", "n_neighbor"} <= fields("igmtf") and "k_day" not in fields("hist")
    assert "rnn_type" in fields("alstm") and "rnn_type" not in fields("lstm")
    assert relevant_fields(get_model_config("lstm"))[:3] == ["name", "model", "d_feat"]  # dataclass order


def test_network_summary_names_each_model_types_own_layers() -> None:
    # the log line must say what is trained: TCN's channels and kernel, not an unused hidden size
    assert network_summary(get_model_config("tcn_ts")) == "n_chans 32, kernel_size 7, num_layers 5, dropout 0.5"
    assert network_summary(get_model_config("transformer")).startswith("d_model 64, nhead 2, dim_feedforward 2048")
    assert network_summary(get_model_config("gats")) == "hidden_size 64, num_layers 2, dropout 0.7, base_model LSTM"


def test_zoo_field_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="batching='samples' mixes trading days"):
        get_model_config("gats", batching="samples")
    with pytest.raises(ValueError, match="base_model='RNN' is not one of"):
        get_model_config("hist", base_model="RNN")
    with pytest.raises(ValueError, match="base_model='LSTM' is only read by"):
        get_model_config("tcn", base_model="LSTM")
    with pytest.raises(ValueError, match="weight_decay must be a number >= 0"):
        get_model_config("transformer", weight_decay=-1e-3)
    with pytest.raises(ValueError, match="d_model=64 must be a multiple of nhead=3"):
        get_model_config("transformer", nhead=3)
    with pytest.raises(ValueError, match="n_chans must be a positive integer"):
        get_model_config("tcn", n_chans=0)
    with pytest.raises(ValueError, match="k_day must be a positive integer"):
        get_model_config("igmtf", k_day=0)
    with pytest.raises(ValueError, match="metric='rank_ic' is not one of"):
        get_model_config("hist", metric="rank_ic")
    with pytest.raises(ValueError, match="batching='weekly' is not one of"):
        get_model_config("lstm", batching="weekly")


def test_every_field_is_a_plain_json_scalar() -> None:
    for name in model_config_names():
        for key, value in get_model_config(name).to_dict().items():
            assert value is None or type(value) in (str, int, float, bool), (name, key, value)


def test_stored_form_leaves_out_the_zoo_defaults_only() -> None:
    lstm = get_model_config("lstm", seed=1)
    assert set(stored_dict(lstm)) == set(lstm.to_dict()) - {
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
    }
    assert ModelConfig.from_dict(stored_dict(lstm)) == lstm
    hist = get_model_config("hist")
    assert {"batching", "base_model"} <= set(stored_dict(hist)) and ModelConfig.from_dict(stored_dict(hist)) == hist
