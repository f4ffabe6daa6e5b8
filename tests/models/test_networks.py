"""Network structure against Qlib's architecture definitions (pytorch_lstm / pytorch_gru / pytorch_alstm)."""

from __future__ import annotations

import pytest
import torch

from models.config import get_model_config
from models.networks import ALSTMNet, GRUNet, LSTMNet, build_network, count_parameters


def rnn_params(gates: int, d_in: int, hidden: int, layers: int) -> int:
    """nn.LSTM (4 gates) / nn.GRU (3 gates): W_ih, W_hh and two bias vectors per layer."""
    total, width = 0, d_in
    for _ in range(layers):
        total += gates * hidden * (width + hidden) + 2 * gates * hidden
        width = hidden
    return total


def expected_count(model: str, d: int, h: int, layers: int, rnn_type: str = "GRU") -> int:
    if model in ("lstm", "gru"):
        return rnn_params(4 if model == "lstm" else 3, d, h, layers) + h + 1
    half = h // 2
    gates = 3 if rnn_type == "GRU" else 4
    return (d * h + h) + rnn_params(gates, h, h, layers) + (h * half + half) + half + (2 * h + 1)


@pytest.mark.parametrize("name", ["lstm", "gru", "alstm", "lstm_ts", "gru_ts", "alstm_ts"])
def test_benchmark_networks_have_qlibs_parameter_count(name: str) -> None:
    config = get_model_config(name)
    net = build_network(config)
    assert count_parameters(net) == expected_count(config.model, config.d_feat, 64, 2)
    out = net(torch.randn(5, config.step_len, config.d_feat))
    assert out.shape == (5,)


def test_known_counts() -> None:
    # Hand-computed for d_feat 6, hidden 64, 2 layers: LSTM 18432 + 33280 + 65; GRU 13824 + 24960 + 65.
    assert count_parameters(LSTMNet(6)) == 51777
    assert count_parameters(GRUNet(6)) == 38849
    # ALSTM: fc_in 448, GRU(64, 64, 2) 49920, attention 2080 + 32, fc_out 129.
    assert count_parameters(ALSTMNet(6)) == 52609


def test_state_dict_names_follow_qlib() -> None:
    rnn = {f"rnn.{kind}_{part}_l{layer}" for kind in ("weight", "bias") for part in ("ih", "hh") for layer in (0, 1)}
    assert set(LSTMNet(6).state_dict()) == rnn | {"fc_out.weight", "fc_out.bias"}
    assert set(GRUNet(20).state_dict()) == rnn | {"fc_out.weight", "fc_out.bias"}
    alstm = ALSTMNet(6).state_dict()
    assert set(alstm) == rnn | {
        "fc_out.weight",
        "fc_out.bias",
        "net.fc_in.weight",
        "net.fc_in.bias",
        "att_net.att_fc_in.weight",
        "att_net.att_fc_in.bias",
        "att_net.att_fc_out.weight",
    }
    assert alstm["net.fc_in.weight"].shape == (64, 6)
    assert alstm["rnn.weight_ih_l0"].shape == (3 * 64, 64)  # GRU over the projected input
    assert alstm["att_net.att_fc_in.weight"].shape == (32, 64)
    assert alstm["att_net.att_fc_out.weight"].shape == (1, 32)
    assert alstm["fc_out.weight"].shape == (1, 128)


def test_alstm_rnn_type_lstm_is_selectable() -> None:
    net = build_network(get_model_config("alstm", rnn_type="LSTM", hidden_size=8))
    assert isinstance(net.rnn, torch.nn.LSTM)
    assert count_parameters(net) == expected_count("alstm", 6, 8, 2, "LSTM")
    assert isinstance(build_network(get_model_config("alstm")).rnn, torch.nn.GRU)


def test_recurrent_net_reads_the_last_step() -> None:
    torch.manual_seed(0)
    net = GRUNet(3, hidden_size=5, num_layers=2).eval()
    x = torch.randn(4, 7, 3)
    out, _ = net.rnn(x)
    expected = out[:, -1] @ net.fc_out.weight[0] + net.fc_out.bias[0]
    torch.testing.assert_close(net(x), expected)
    # a single sample still gives a 1-D output (Qlib's squeeze() would give a scalar)
    assert net(x[:1]).shape == (1,)


def test_alstm_forward_is_last_step_plus_attention_pooling() -> None:
    torch.manual_seed(1)
    net = ALSTMNet(3, hidden_size=6, num_layers=1).eval()
    x = torch.randn(4, 5, 3)
    hidden, _ = net.rnn(torch.tanh(x @ net.net.fc_in.weight.T + net.net.fc_in.bias))
    att = net.att_net
    logits = torch.tanh(hidden @ att.att_fc_in.weight.T + att.att_fc_in.bias) @ att.att_fc_out.weight.T  # [N, T, 1]
    weights = torch.softmax(logits, dim=1)
    pooled = (hidden * weights).sum(1)
    expected = torch.cat([hidden[:, -1], pooled], 1) @ net.fc_out.weight[0] + net.fc_out.bias[0]
    torch.testing.assert_close(net(x), expected)
