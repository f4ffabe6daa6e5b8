"""The model workflow over the warehouse, as plain functions the Dagster assets call:

fit a data handler on its fit window -> train a model on processed train / valid samples -> store the
artifact and register it -> score any date window with the registered artifact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features import catalog
from models.artifacts import load_artifact, save_artifact
from models.config import ModelConfig
from models.scoring import predict
from models.training import Log, TrainResult, resolve_device, train_model
from pipeline.segments import Segments
from processing.config import NAMED_CONFIGS
from processing.dataset import build_segments
from processing.handler import FittedHandler, fit_handler, get_handler_config
from warehouse.feature_tables import FEATURE_TABLES, history_bounds, read_feature_frame, trading_days
from warehouse.store import Warehouse


class _HandlerFeatureSets(Mapping[str, str]):
    """handler -> the feature set it reads: each named handler configuration's own ``feature_set`` (any catalog
    set, PIPELINE_FEATURES sets included), read live so a configuration added later is seen."""

    def __getitem__(self, handler: str) -> str:
        return NAMED_CONFIGS[handler].feature_set

    def __iter__(self) -> Iterator[str]:
        return iter(NAMED_CONFIGS)

    def __len__(self) -> int:
        return len(NAMED_CONFIGS)


HANDLER_FEATURE_SET: Mapping[str, str] = _HandlerFeatureSets()


def latest_labelled_day(warehouse: Warehouse) -> dt.date | None:
    label = catalog.label_set()
    if not warehouse.table_exists(label.table):
        return None
    column = label.column_names[0]
    return warehouse.query(f'select max(date) as d from {label.table} where "{column}" is not null').item()


def read_membership(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query("select instrument, start_date, end_date from instruments order by instrument, start_date")


def read_panel(
    warehouse: Warehouse,
    feature_set: str,
    start: dt.date,
    end: dt.date,
    columns: list[str] | None = None,
    what: str = "the requested window",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    features = read_feature_frame(warehouse, feature_set, start, end, columns)
    labels = read_feature_frame(warehouse, catalog.label_set().name, start, end)
    if features.height == 0:
        raise ValueError(
            f"{what} {start}..{end} has no {feature_set} features in the warehouse; check the segments or "
            "materialize the features assets for those dates"
        )
    return features, labels


# -- handlers ---------------------------------------------------------------------------------------------
@dataclass
class HandlerFit:
    handler: str
    version: str
    state: dict[str, Any]
    fitted: FittedHandler
    fit_start: dt.date
    fit_end: dt.date
    rows: int


def state_version(state: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:12]


def fit_and_store_handler(warehouse: Warehouse, handler: str, segments: Segments) -> HandlerFit:
    """Fit ``handler``'s processors on the fit window and store their statistics in the `handlers` table."""
    config = get_handler_config(handler)
    feature_set = HANDLER_FEATURE_SET[handler]
    fit_start, fit_end = segments.fit
    features, labels = read_panel(
        warehouse, feature_set, fit_start, fit_end, what="the train segment (the processors' fit window)"
    )
    fitted = fit_handler(config, features, labels, fit_start, fit_end, membership=read_membership(warehouse))
    state = fitted.state()
    version = state_version(state)
    row = pl.DataFrame(
        {
            "handler": [handler],
            "handler_version": [version],
            "fitted_at": [dt.datetime.now()],
            "fit_start": [fit_start],
            "fit_end": [fit_end],
            "feature_set": [feature_set],
            "n_rows": [features.height],
            "state": [json.dumps(state, default=str)],
        }
    )
    warehouse.replace("handlers", row, where={"handler": handler})
    return HandlerFit(handler, version, state, fitted, fit_start, fit_end, features.height)


def load_handler(warehouse: Warehouse, handler: str) -> tuple[str, dict[str, Any], FittedHandler]:
    rows = warehouse.query("select handler_version, state from handlers where handler = ?", [handler])
    if rows.height == 0:
        raise ValueError(f"handler {handler!r} has not been fitted yet; materialize dataset_{handler} first")
    version, state_text = rows.row(0)
    state = json.loads(state_text)
    return version, state, FittedHandler.from_state(state)


# -- training ---------------------------------------------------------------------------------------------
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


def _history_start(warehouse: Warehouse, start: dt.date, step_len: int) -> dt.date:
    calendar = trading_days(warehouse)
    first, _ = history_bounds(calendar, start, start, step_len, 0)
    return first


def build_model_samples(
    warehouse: Warehouse,
    config: ModelConfig,
    fitted: FittedHandler,
    windows: dict[str, tuple[dt.date, dt.date]],
    phases: dict[str, float] | None = None,
) -> dict:
    """Processed SampleSets for the named date windows (train/valid: learn data; test: infer data). ``phases``,
    when given, receives the seconds spent reading (``read``) and processing + building (``build``)."""
    feature_set = HANDLER_FEATURE_SET[config.handler]
    lo = min(w[0] for w in windows.values())
    hi = max(w[1] for w in windows.values())
    step = config.step_len if config.layout == "sequence" else 0
    t = time.perf_counter()
    features, labels = read_panel(warehouse, feature_set, _history_start(warehouse, lo, step), hi)
    membership = read_membership(warehouse)
    t_read = time.perf_counter()
    samples = build_segments(
        fitted, features, labels, windows, view=config.layout, step_len=config.step_len, membership=membership
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
) -> TrainedModel:
    handler_version, handler_state, fitted = load_handler(warehouse, config.handler)
    samples = build_model_samples(warehouse, config, fitted, {"train": segments.train, "valid": segments.valid})
    result = train_model(config, samples["train"], samples["valid"], device=device, log=log)
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
    )


# -- scoring ----------------------------------------------------------------------------------------------
def current_model(warehouse: Warehouse, name: str) -> dict[str, Any]:
    rows = warehouse.query("select * from models where model = ? order by trained_at desc limit 1", [name])
    if rows.height == 0:
        raise ValueError(f"model {name!r} has not been trained yet; materialize model_{name} first")
    return rows.row(0, named=True)


@dataclass
class ScoreReport:
    model: str
    version: str
    rows: int
    seconds: float
    # seconds per phase: load (artifact), read (features from DuckDB), build (processors + samples), forward, write
    phases: dict[str, float] = field(default_factory=dict)


def _member_rows(warehouse: Warehouse, feature_set: str, start: dt.date, end: dt.date) -> int:
    """Feature rows of universe members in [start, end]: zero on days whose bars are not in yet."""
    table = FEATURE_TABLES[feature_set]
    return warehouse.query(
        f"select count(*) from {table} f join instruments m on f.instrument = m.instrument "
        "and f.date between m.start_date and m.end_date where f.date between ? and ?",
        [start, end],
    ).item()


def score_window(
    warehouse: Warehouse,
    name: str,
    start: dt.date,
    end: dt.date,
    device: str = "auto",
    log: Log = None,
    batch_size: int | None = None,
) -> ScoreReport:
    """Score [start, end] with the registered artifact of ``name`` and store the scores under its version.

    ``log`` gets the scoring progress (see :func:`models.scoring.predict`); ``batch_size`` defaults to the
    model's own (inference batches only change the float rounding of the GEMMs, not the scores).
    """
    t0 = time.perf_counter()
    phases: dict[str, float] = {}
    entry = current_model(warehouse, name)
    model, config, extra = load_artifact(entry["path"], device=resolve_device(device))
    fitted = FittedHandler.from_state(extra["handler_state"])
    calendar = [d for d in trading_days(warehouse) if start <= d <= end]
    scores = pl.DataFrame(
        schema={"model": pl.Utf8, "model_version": pl.Utf8, "instrument": pl.Utf8, "date": pl.Date, "score": pl.Float64}
    )
    feature_set = HANDLER_FEATURE_SET[config.handler]
    phases["load"] = time.perf_counter() - t0
    if calendar and _member_rows(warehouse, feature_set, start, end):
        samples = build_model_samples(warehouse, config, fitted, {"test": (start, end)}, phases)["test"]
        if samples.n_samples:
            t = time.perf_counter()
            values = predict(
                model,
                samples,
                device=resolve_device(device),
                batch_size=batch_size or config.batch_size,
                log=log,
                name=f"predictions_{name} {start}..{end}",
            )
            phases["forward"] = time.perf_counter() - t
            scores = pl.DataFrame(
                {
                    "model": name,
                    "model_version": entry["model_version"],
                    "instrument": samples.instruments.astype(str),
                    "date": samples.dates.astype("datetime64[D]"),
                    "score": np.asarray(values, dtype=np.float64),
                }
            )
    t = time.perf_counter()
    rows = warehouse.replace(
        "predictions", scores, date_range=(start, end), where={"model": name, "model_version": entry["model_version"]}
    )
    phases["write"] = time.perf_counter() - t
    return ScoreReport(name, entry["model_version"], rows, time.perf_counter() - t0, phases)
