"""Qlib's Transformer and Localformer networks (pytorch_transformer[_ts].py, pytorch_localformer[_ts].py).

Both project each day's features to ``d_model``, add a sinusoidal position code and run post-norm encoder
layers (PyTorch's ``TransformerEncoderLayer``: feed-forward width 2048 unless ``dim_feedforward`` says
otherwise, ReLU); the newest step feeds
``Linear(d_model, 1)``. Localformer adds, before each encoder layer, a same-length ``Conv1d(d_model, d_model, 3)``
over time whose output is added to the layer input, adds the last convolution's output once more at the end,
and reads the encoded sequence through a GRU.

The input is ``[N, T, d_feat]``; after the projection the encoders run sequence-first (``[T, N, d_model]``),
as Qlib's do: PyTorch's batch-first attention transposes in and out of every layer, measurably slower on CPU
(about 8 % for the _ts shapes). The module tree mirrors Qlib's, template layer included: ``feature_layer``,
``pos_encoder.pe`` (a [1000, 1, d_model] buffer), ``encoder_layer.*`` (the layer the stack was copied from, unused
in forward), ``transformer_encoder.layers.{i}.*`` (Localformer: ``transformer_encoder.conv.{i}.*`` and ``rnn.*``),
``decoder_layer``. All stacked layers start as copies of one layer, as in Qlib.

Defaults are Qlib's wrapper defaults (d_model 64, nhead 2, 2 layers, dropout 0), not its nn.Module's.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from models.nets.cpu_inference import run_rnn
from models.nets.feedforward import EncoderLayer

MAX_LEN = 1000
# Qlib leaves nn.TransformerEncoderLayer's default width; smaller values are for quick CPU runs only.
FEEDFORWARD = 2048


class PositionalEncoding(nn.Module):
    """Adds ``sin`` / ``cos`` of position x 10000^(-2i/d) to the even / odd channels."""

    def __init__(self, d_model: int, max_len: int = MAX_LEN):
        super().__init__()
        if d_model % 2:
            raise ValueError(f"d_model must be even for the sin/cos code, got {d_model}")
        position = torch.arange(max_len, dtype=torch.float).unsqueeze(1)
        rate = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        code = torch.zeros(max_len, d_model)
        code[:, 0::2] = torch.sin(position * rate)
        code[:, 1::2] = torch.cos(position * rate)
        self.register_buffer("pe", code.unsqueeze(1))  # [max_len, 1, d_model], broadcast over the stocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [T, N, d_model]."""
        return x + self.pe[: x.shape[0]]


def _encoder_layer(d_model: int, nhead: int, dropout: float, dim_feedforward: int) -> nn.TransformerEncoderLayer:
    # Qlib's nn.TransformerEncoderLayer, its feed-forward block fused on the CPU (models.nets.feedforward)
    return EncoderLayer(d_model=d_model, nhead=nhead, dropout=dropout, dim_feedforward=dim_feedforward)


class TransformerNet(nn.Module):
    def __init__(
        self,
        d_feat: int,
        d_model: int = 64,
        nhead: int = 2,
        num_layers: int = 2,
        dropout: float = 0.0,
        dim_feedforward: int = FEEDFORWARD,
    ):
        super().__init__()
        self.feature_layer = nn.Linear(d_feat, d_model)
        self.pos_encoder = PositionalEncoding(d_model)
        self.encoder_layer = _encoder_layer(d_model, nhead, dropout, dim_feedforward)
        # nested tensors only pay off with padding masks, and there are none here
        self.transformer_encoder = nn.TransformerEncoder(self.encoder_layer, num_layers, enable_nested_tensor=False)
        self.decoder_layer = nn.Linear(d_model, 1)
        self.d_feat = d_feat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pos_encoder(self.feature_layer(x).transpose(0, 1))
        layers = self.transformer_encoder.layers
        for layer in layers[:-1]:
            h = layer(h)
        # Only the newest step of the last layer reaches the decoder: its attention reads every step, but its
        # feed-forward (2048 wide: nearly half the network's work) runs on that step alone.
        return self.decoder_layer(newest_step(layers[-1], h))[:, 0]


def newest_step(layer: nn.TransformerEncoderLayer, h: torch.Tensor) -> torch.Tensor:
    """``layer(h)[-1]`` for a post-norm layer without masks, computed for the newest step only: the query is that
    step, the keys and values every step of ``h`` ([T, N, d_model]); the same operations on that row as the
    whole layer runs. With dropout > 0 the masks are drawn for fewer elements than the whole layer draws."""
    if layer.norm_first:
        raise ValueError("newest_step follows the post-norm layer (norm_first=False), as Qlib builds it")
    query = h[-1:]
    attended = layer.self_attn(query, h, h, need_weights=False)[0]
    out = layer.norm1(query + layer.dropout1(attended))
    out = layer.norm2(out + layer._ff_block(out))
    return out[0]


class LocalformerEncoder(nn.Module):
    """Encoder layers each preceded by a residual local convolution over time (Qlib's LocalformerEncoder)."""

    def __init__(self, encoder_layer: nn.TransformerEncoderLayer, num_layers: int, d_model: int):
        super().__init__()
        if num_layers < 1:
            raise ValueError("Localformer needs at least one layer")
        self.layers = nn.ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_layers))
        conv = nn.Conv1d(d_model, d_model, kernel_size=3, stride=1, padding=1)
        self.conv = nn.ModuleList(copy.deepcopy(conv) for _ in range(num_layers))
        self.num_layers = num_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [T, N, d_model] -> [T, N, d_model]."""
        out = x
        for conv, layer in zip(self.conv, self.layers, strict=True):
            local = conv(out.permute(1, 2, 0)).permute(2, 0, 1)  # the convolution runs over T of [N, d, T]
            out = layer(out + local)
        return out + local


class LocalformerNet(nn.Module):
    def __init__(
        self,
        d_feat: int,
        d_model: int = 64,
        nhead: int = 2,
        num_layers: int = 2,
        dropout: float = 0.0,
        dim_feedforward: int = FEEDFORWARD,
    ):
        super().__init__()
        # created first, as in Qlib, so the same seed gives the same weights
        self.rnn = nn.GRU(d_model, d_model, num_layers, dropout=dropout if num_layers > 1 else 0.0)
        self.feature_layer = nn.Linear(d_feat, d_model)
        self.pos_encoder = PositionalEncoding(d_model)
        self.encoder_layer = _encoder_layer(d_model, nhead, dropout, dim_feedforward)
        self.transformer_encoder = LocalformerEncoder(self.encoder_layer, num_layers, d_model)
        self.decoder_layer = nn.Linear(d_model, 1)
        self.d_feat = d_feat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoded = self.transformer_encoder(self.pos_encoder(self.feature_layer(x).transpose(0, 1)))
        out = run_rnn(self.rnn, encoded)  # sequence-first, as the encoder
        return self.decoder_layer(out[-1])[:, 0]
