"""The networks of Qlib's remaining deep models: Transformer, Localformer, TCN, GATs, HIST and IGMTF.

Each takes ``[N, T, d_feat]`` (the gather of ``models.batches``, flat Alpha360 rows already reshaped) and
returns ``[N]``. GATs, HIST and IGMTF expect one trading day's cross-section per call; HIST also takes that
day's stock-to-concept matrix and IGMTF a ``TrainMemory`` of the training days' hidden states.
"""

from __future__ import annotations

from torch import nn

from models.nets.gats import GATNet
from models.nets.hist import HISTNet
from models.nets.igmtf import IGMTFNet, TrainMemory
from models.nets.tcn import TCNNet
from models.nets.transformer import LocalformerNet, TransformerNet

# model type -> network class; the _ts configurations use the same class with d_feat 20
ZOO_NETWORKS: dict[str, type[nn.Module]] = {
    "transformer": TransformerNet,
    "localformer": LocalformerNet,
    "tcn": TCNNet,
    "gats": GATNet,
    "hist": HISTNet,
    "igmtf": IGMTFNet,
}
# the models whose forward reads a whole day's cross-section (Qlib's daily batches)
CROSS_SECTION_MODELS = ("gats", "hist", "igmtf")

__all__ = [
    "CROSS_SECTION_MODELS",
    "ZOO_NETWORKS",
    "GATNet",
    "HISTNet",
    "IGMTFNet",
    "LocalformerNet",
    "TCNNet",
    "TrainMemory",
    "TransformerNet",
]
