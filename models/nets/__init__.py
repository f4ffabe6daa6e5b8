"""The networks of Qlib's remaining deep models: Transformer, Localformer, TCN, GATs, HIST and IGMTF.

Each takes ``[N, T, d_feat]`` (the gather of ``models.batches``, flat Alpha360 rows already reshaped) and
returns ``[N]``. GATs, HIST and IGMTF expect one trading day's cross-section per call; HIST also takes that
day's stock-to-concept matrix and IGMTF a ``TrainMemory`` of the training days' hidden states.
"""

from __future__ import annotations

from models.nets.gats import GATNet
from models.nets.hist import HISTNet
from models.nets.igmtf import IGMTFNet, TrainMemory
from models.nets.tcn import TCNNet
from models.nets.transformer import LocalformerNet, TransformerNet

__all__ = [
    "GATNet",
    "HISTNet",
    "IGMTFNet",
    "LocalformerNet",
    "TCNNet",
    "TrainMemory",
    "TransformerNet",
]
