"""The model registry (table `models`): a model's current artifact, and the trained base network a graph model
(GATs, HIST, IGMTF) starts from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from models.artifacts import load_artifact
from models.config import ModelConfig, base_config_name
from warehouse.store import Warehouse
from workflow.names import model_asset

# Fields a base network must share with the model that starts from it: the weight shapes and the data it read.
BASE_SHAPE_FIELDS = ("d_feat", "hidden_size", "num_layers", "layout", "step_len", "handler")


def current_model(warehouse: Warehouse, name: str) -> dict[str, Any]:
    """The registered row of ``name``'s newest artifact."""
    rows = None
    if warehouse.table_exists("models"):
        rows = warehouse.query("select * from models where model = ? order by trained_at desc limit 1", [name])
    if rows is None or rows.height == 0:
        raise ValueError(f"model {name!r} has not been trained yet; materialize {model_asset(name)} first")
    return rows.row(0, named=True)


@dataclass
class BaseNetwork:
    name: str  # the base configuration, e.g. "lstm"
    version: str  # its registered model_version
    state: dict[str, torch.Tensor]


def load_base(warehouse: Warehouse, name: str, config: ModelConfig) -> BaseNetwork | None:
    """The current artifact of ``config``'s base configuration (``base_config_name``), or None for a model
    without one. Its network must match ``config`` in every field of BASE_SHAPE_FIELDS."""
    base_name = base_config_name(config)
    if base_name is None:
        return None
    try:
        entry = current_model(warehouse, base_name)
    except ValueError:
        raise ValueError(
            f"model {name!r} starts from the trained {base_name!r} ({config.base_model}), which has not been "
            f"trained yet; materialize {model_asset(base_name)} first"
        ) from None
    network, base_config, _ = load_artifact(entry["path"], device="cpu")
    if base_config.model != config.base_model.lower():
        raise ValueError(
            f"model {name!r} needs a {config.base_model} base, but {base_name!r} version {entry['model_version']} "
            f"is a {base_config.model}"
        )
    for field in BASE_SHAPE_FIELDS:
        ours, theirs = getattr(config, field), getattr(base_config, field)
        if ours != theirs:
            raise ValueError(
                f"model {name!r} cannot start from {base_name!r} version {entry['model_version']}: {field} is "
                f"{ours!r} in {name!r} but {theirs!r} in {base_name!r}; train {base_name!r} with {field}={ours!r} "
                f"(or {name!r} with {field}={theirs!r})"
            )
    return BaseNetwork(base_name, entry["model_version"], network.state_dict())
