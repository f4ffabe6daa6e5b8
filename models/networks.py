"""The recurrent networks of Qlib's LSTM / GRU / ALSTM benchmarks, and ``build_network`` for every model type
(the other networks live in ``models.nets``).

Every network takes ``[batch, time, d_feat]`` (oldest step first) and returns ``[batch]``. Qlib's non-TS models
reshape a flat Alpha360 row inside ``forward``; here that reshape happens once in the batch gather
(``models.batches``), so one class serves both the flat and the sequence layouts.

Sub-module names and parameter shapes follow Qlib's ``nn.Module`` classes, so a state_dict from one loads into
the other (``rnn.*`` and ``fc_out.*``; ALSTM adds ``net.fc_in.*`` and ``att_net.att_fc_in.*`` /
``att_net.att_fc_out.weight``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from models.nets import GATNet, HISTNet, IGMTFNet, LocalformerNet, TCNNet, TransformerNet
from models.nets.cpu_inference import run_rnn, tanh
from models.nets.dropout import Dropout

if TYPE_CHECKING:
    from models.config import ModelConfig

RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"GRU": nn.GRU, "LSTM": nn.LSTM}


def _rnn(kind: str, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.RNNBase:
    try:
        klass = RNN_CLASSES[kind.upper()]
    except KeyError:
        raise ValueError(f"unknown rnn_type {kind!r}; valid: {sorted(RNN_CLASSES)}") from None
    # PyTorch warns when dropout > 0 with a single layer (it would have no effect); Qlib passes it anyway.
    return klass(
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        batch_first=True,
        dropout=dropout if num_layers > 1 else 0.0,
    )


class RecurrentNet(nn.Module):
    """A stacked LSTM or GRU whose last time step feeds ``Linear(hidden, 1)`` (Qlib's LSTMModel / GRUModel)."""

    def __init__(self, rnn_type: str, d_feat: int, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.rnn = _rnn(rnn_type, d_feat, hidden_size, num_layers, dropout)
        self.fc_out = nn.Linear(hidden_size, 1)
        self.d_feat = d_feat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = run_rnn(self.rnn, x)  # [N, T, H]
        return self.fc_out(out[:, -1, :])[:, 0]


class LSTMNet(RecurrentNet):
    def __init__(self, d_feat: int, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0):
        super().__init__("LSTM", d_feat, hidden_size, num_layers, dropout)


class GRUNet(RecurrentNet):
    def __init__(self, d_feat: int, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0):
        super().__init__("GRU", d_feat, hidden_size, num_layers, dropout)


class ALSTMNet(nn.Module):
    """Qlib's ALSTMModel: input projection, recurrent stack, additive attention over time.

    The output reads the last hidden state and the attention-weighted sum of all hidden states.
    """

    def __init__(
        self,
        d_feat: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        rnn_type: str = "GRU",
    ):
        super().__init__()
        half = int(hidden_size / 2)
        self.net = nn.Sequential()
        self.net.add_module("fc_in", nn.Linear(d_feat, hidden_size))
        self.net.add_module("act", nn.Tanh())
        self.rnn = _rnn(rnn_type, hidden_size, hidden_size, num_layers, dropout)
        self.fc_out = nn.Linear(hidden_size * 2, 1)
        self.att_net = nn.Sequential()
        self.att_net.add_module("att_fc_in", nn.Linear(hidden_size, half))
        self.att_net.add_module("att_dropout", Dropout(dropout))
        self.att_net.add_module("att_act", nn.Tanh())
        self.att_net.add_module("att_fc_out", nn.Linear(half, 1, bias=False))
        self.att_net.add_module("att_softmax", nn.Softmax(dim=1))  # over the time axis
        self.d_feat = d_feat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the two Sequentials' layers in their order, each Tanh through cpu_inference.tanh (faster when scoring)
        hidden = run_rnn(self.rnn, tanh(self.net.fc_in(x)))  # [N, T, H]
        att = self.att_net
        weights = att.att_softmax(att.att_fc_out(tanh(att.att_dropout(att.att_fc_in(hidden)))))  # [N, T, 1]
        pooled = (hidden * weights).sum(dim=1)  # [N, H]
        return self.fc_out(torch.cat((hidden[:, -1, :], pooled), dim=1))[:, 0]


def build_network(config: ModelConfig) -> nn.Module:
    """The untrained network described by ``config`` (PyTorch default initialisation, as Qlib; the same torch
    seed gives Qlib's initial weights)."""
    rnn = {
        "d_feat": config.d_feat,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_layers,
        "dropout": config.dropout,
    }
    kind = config.model
    if kind == "lstm":
        return LSTMNet(**rnn)
    if kind == "gru":
        return GRUNet(**rnn)
    if kind == "alstm":
        return ALSTMNet(**rnn, rnn_type=config.rnn_type)
    if kind in ("transformer", "localformer"):
        klass = TransformerNet if kind == "transformer" else LocalformerNet
        return klass(
            config.d_feat, config.d_model, config.nhead, config.num_layers, config.dropout, config.dim_feedforward
        )
    if kind == "tcn":
        return TCNNet(config.d_feat, config.n_chans, config.num_layers, config.kernel_size, config.dropout)
    graph = {"gats": GATNet, "hist": HISTNet, "igmtf": IGMTFNet}
    if kind in graph:
        return graph[kind](**rnn, base_model=config.base_model)
    raise ValueError(f"unknown model type {kind!r}; valid: {sorted(['lstm', 'gru', 'alstm', *graph, 'tcn'])}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
