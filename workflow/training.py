"""The training stage: build a model's processed samples from the warehouse, train it, store the artifact and
register it in table `models`. A graph model (GATs, HIST, IGMTF) starts from its base configuration's current
artifact (``workflow.registry.load_base``), and the artifact and its row name that base and its version."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from models.artifacts import save_artifact
from models.config import ModelConfig
from models.training import TrainResult, train_model
from processing.concepts import Concepts
from processing.config import get_handler_config
from processing.dataset import build_segments
from processing.handler import FittedHandler
from warehouse.store import Warehouse
from workflow.handlers import load_handler
from workflow.panels import history_start, read_membership, read_panel
from workflow.registry import load_base
from workflow.segments import Segments


@dataclass
class TrainedModel:
    name: str
    version: str
    path: Path
    result: TrainResult
    segments: Segments
    handler: str
    handler_version: str
    n_train: int
    n_valid: int
    base_model: str | None = None  # the configuration whose trained weights this model started from
    base_model_version: str | None = None


def build_model_samples(
    warehouse: Warehouse,
    config: ModelConfig,
    fitted: FittedHandler,
    windows: dict[str, tuple[dt.date, dt.date]],
    phases: dict[str, float] | None = None,
) -> dict:
    """Processed SampleSets for the named date windows (train/valid: learn data; test: infer data). ``phases``,
    when given, receives the seconds spent reading (``read``) and processing + building (``build``)."""
    feature_set = get_handler_config(config.handler).feature_set
    lo = min(w[0] for w in windows.values())
    hi = max(w[1] for w in windows.values())
    step = config.step_len if config.layout == "sequence" else 0
    t = time.perf_counter()
    features, labels = read_panel(warehouse, feature_set, history_start(warehouse, lo, step), hi)
    membership = read_membership(warehouse)
    t_read = time.perf_counter()
    samples = build_segments(
        fitted, features, labels, windows, layout=config.layout, step_len=config.step_len, membership=membership
    )
    if phases is not None:
        phases["read"] = t_read - t
        phases["build"] = time.perf_counter() - t_read
    return samples


def train_and_store(
    warehouse: Warehouse,
    artifact_root: Path,
    name: str,
    config: ModelConfig,
    segments: Segments,
    device: str = "auto",
    log: Any = None,
    concepts: Concepts | None = None,
) -> TrainedModel:
    """Train ``config`` on the segments and register it as ``name``. HIST needs ``concepts`` (the stock-to-concept
    memberships); GATs / HIST / IGMTF need their base configuration trained first."""
    if config.model == "hist" and concepts is None:
        raise ValueError(f"model {name!r} (HIST) needs the stock-to-concept matrix: pass concepts=")
    base = load_base(warehouse, name, config)
    handler_version, handler_state, fitted = load_handler(warehouse, config.handler)
    samples = build_model_samples(warehouse, config, fitted, {"train": segments.train, "valid": segments.valid})
    result = train_model(
        config,
        samples["train"],
        samples["valid"],
        device=device,
        log=log,
        base_state=base.state if base else None,
        concepts=concepts,
    )
    extra = {
        "model": name,
        "handler": config.handler,
        "handler_version": handler_version,
        "handler_state": handler_state,
        "segments": segments.as_dict(),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "device": result.device,
        "trained_at": dt.datetime.now().isoformat(timespec="seconds"),
    }
    if base is not None:
        extra.update(base_model=base.name, base_model_version=base.version, base_entries=result.base_copied)
    if config.model == "hist" and concepts is not None:
        extra.update(concepts=concepts.source, n_concepts=concepts.n_concepts)
    info = save_artifact(artifact_root / "models" / name, result.model, config, extra)
    row = pl.DataFrame(
        {
            "model": [name],
            "model_version": [info.version],
            "trained_at": [dt.datetime.now()],
            "path": [str(info.path)],
            "device": [result.device],
            "handler": [config.handler],
            "handler_version": [handler_version],
            "train_start": [segments.train[0]],
            "train_end": [segments.train[1]],
            "valid_start": [segments.valid[0]],
            "valid_end": [segments.valid[1]],
            "test_start": [segments.test[0]],
            "test_end": [segments.test[1]],
            "best_epoch": [result.best_epoch],
            "epochs_run": [result.epochs_run],
            "best_valid_score": [float(result.best_score)],
            "wall_time_s": [float(result.wall_time_s)],
            "samples_per_s": [float(result.samples_per_s)],
            "n_parameters": [int(result.n_parameters)],
            "config": [json.dumps(config.to_dict())],
            # typed: a warehouse from before these columns gets them added by the write (Warehouse.replace)
            "base_model": pl.Series([base.name if base else None], dtype=pl.Utf8),
            "base_model_version": pl.Series([base.version if base else None], dtype=pl.Utf8),
        }
    )
    warehouse.replace("models", row, where={"model": name, "model_version": info.version})
    return TrainedModel(
        name,
        info.version,
        Path(info.path),
        result,
        segments,
        config.handler,
        handler_version,
        samples["train"].n_samples,
        samples["valid"].n_samples,
        base.name if base else None,
        base.version if base else None,
    )
