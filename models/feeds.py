"""How a network is called on a set of samples, the per-day extras of the graph models included.

Most networks take the gathered inputs only. HIST also takes the stock-to-concept rows of the day's stocks: the
padded concept matrix (``Concepts.padded_matrix``, an all-zero last row for unknown instruments) goes to the
device once, each sample's row number once, and a day's rows are a gather. IGMTF also takes a ``TrainMemory``
of the training segment's hidden states; Qlib recomputes it (in eval mode) before every training epoch and
again before predicting, and ``refresh_memory`` does the same, on the device, in chunks of samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from models.batches import DeviceSamples
from models.config import ModelConfig
from models.daily import DayIndex
from models.nets import TrainMemory
from models.nets.igmtf import memory_chunk
from processing.concepts import Concepts
from processing.samples import SampleSet


@dataclass
class Context:
    """What every segment's calls share: HIST's concept matrix, IGMTF's memory and neighbour counts."""

    kind: str  # ModelConfig.model
    concepts: torch.Tensor | None = None  # [n_instruments + 1, n_concepts] float32 on the device
    memory: TrainMemory | None = None
    k_day: int = 10
    n_neighbor: int = 10
    refreshes: int = 0  # how often the memory was recomputed


def make_context(config: ModelConfig, concepts: Concepts | None, device: torch.device) -> Context:
    if config.model == "hist" and concepts is None:
        raise ValueError(f"model {config.name!r} (HIST) needs the stock-to-concept matrix; got concepts=None")
    matrix = None
    if config.model == "hist" and concepts is not None:
        matrix = torch.from_numpy(concepts.padded_matrix()).to(device)
    return Context(config.model, matrix, None, config.k_day, config.n_neighbor)


@dataclass
class Feed:
    """Calls ``forward`` on samples of one segment (``DeviceSamples``) with the context's extras."""

    data: DeviceSamples
    context: Context
    concept_rows: torch.Tensor | None = None  # [n] long: each sample's row of context.concepts (HIST)

    @classmethod
    def build(cls, context: Context, samples: SampleSet, data: DeviceSamples, concepts: Concepts | None) -> Feed:
        rows = None
        if context.kind == "hist" and concepts is not None:
            rows = torch.as_tensor(concepts.index_of(samples.instruments), dtype=torch.long).to(data.labels.device)
        return cls(data, context, rows)

    def __call__(self, forward: Callable[..., torch.Tensor], idx: torch.Tensor | slice) -> torch.Tensor:
        x = self.data.inputs(idx)
        ctx = self.context
        if ctx.kind == "hist":
            assert ctx.concepts is not None and self.concept_rows is not None
            return forward(x, ctx.concepts[self.concept_rows[idx]])
        if ctx.kind == "igmtf":
            if ctx.memory is None:
                raise RuntimeError("IGMTF's training memory has not been computed (refresh_memory)")
            return forward(x, ctx.memory, ctx.k_day, ctx.n_neighbor)
        return forward(x)


def refresh_memory(model: nn.Module, feed: Feed, days: DayIndex, chunk: int | None = None) -> TrainMemory:
    """Recompute IGMTF's memory from the samples ``days`` indexes (the training segment) with the current
    weights, in eval mode (Qlib's ``get_train_hidden``); stores it in the feed's context and returns it.
    ``chunk``: samples per forward pass (default: ``memory_chunk`` of the samples' device)."""
    hidden_of = model.hidden  # IGMTFNet.hidden: the states a memory holds
    chunk = chunk or memory_chunk(feed.data.labels.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            states = torch.cat(
                [hidden_of(feed.data.inputs(days.order[i : i + chunk])) for i in range(0, days.n_samples, chunk)]
            )
    finally:
        model.train(was_training)
    memory = TrainMemory.from_hidden(states.float(), days.day_of)
    feed.context.memory = memory
    feed.context.refreshes += 1
    return memory
