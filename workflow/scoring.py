"""The scoring stage: score a date window with a model's registered artifact and store the scores in table
`predictions` under its version."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from models.artifacts import load_artifact
from models.scoring import predict
from models.training import Log, resolve_device
from processing.concepts import Concepts
from processing.config import get_handler_config
from processing.handler import FittedHandler
from warehouse.feature_store import FEATURE_TABLES, trading_days
from warehouse.store import Warehouse
from workflow.names import predictions_asset
from workflow.registry import current_model
from workflow.segments import Segments
from workflow.training import build_model_samples


@dataclass
class ScoreReport:
    model: str
    version: str
    rows: int
    seconds: float
    # seconds per phase: load (artifact), read (features from DuckDB), build (processors + samples), forward, write
    phases: dict[str, float] = field(default_factory=dict)
    first_day: dt.date | None = None  # the first day scored: the window's start, or the day after valid ends


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
    concepts: Concepts | None = None,
) -> ScoreReport:
    """Score [start, end] with the registered artifact of ``name`` and store the scores under its version.

    ``log`` gets the scoring progress (see :func:`models.scoring.predict`); ``batch_size`` defaults to the
    model's own (inference batches only change the float rounding of the GEMMs, not the scores). GATs, HIST and
    IGMTF score one day at a time; HIST needs ``concepts``; IGMTF rebuilds its memory from the samples of the
    train segment the artifact records (phase ``memory``).

    Only out-of-sample days are scored: days up to the end of the model's validation segment are left out (the
    evaluation never reads a version's scores of the days it was fitted or early-stopped on; it takes, per day,
    the newest version trained before that day), so a run over the whole history costs only its test days.
    ``ScoreReport.first_day`` is the first day this version scores.
    """
    t0 = time.perf_counter()
    phases: dict[str, float] = {}
    entry = current_model(warehouse, name)
    model, config, extra = load_artifact(entry["path"], device=resolve_device(device))
    if config.model == "hist" and concepts is None:
        raise ValueError(f"model {name!r} (HIST) needs the stock-to-concept matrix: pass concepts=")
    fitted = FittedHandler.from_state(extra["handler_state"])
    first_day = max(start, entry["valid_end"] + dt.timedelta(days=1))
    calendar = [d for d in trading_days(warehouse) if first_day <= d <= end]
    scores = pl.DataFrame(
        schema={"model": pl.Utf8, "model_version": pl.Utf8, "instrument": pl.Utf8, "date": pl.Date, "score": pl.Float64}
    )
    feature_set = get_handler_config(config.handler).feature_set
    phases["load"] = time.perf_counter() - t0
    if calendar and _member_rows(warehouse, feature_set, first_day, end):
        samples = build_model_samples(warehouse, config, fitted, {"test": (first_day, end)}, phases)["test"]
        if samples.n_samples:
            train_samples = None
            if config.model == "igmtf":
                t = time.perf_counter()
                train = Segments.from_dict(extra["segments"]).train
                train_samples = build_model_samples(warehouse, config, fitted, {"train": train})["train"]
                phases["memory"] = time.perf_counter() - t
            t = time.perf_counter()
            values = predict(
                model,
                samples,
                device=resolve_device(device),
                batch_size=batch_size or config.batch_size,
                log=log,
                name=f"{predictions_asset(name)} {first_day}..{end}",
                config=config,
                concepts=concepts,
                train_samples=train_samples,
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
    return ScoreReport(name, entry["model_version"], rows, time.perf_counter() - t0, phases, first_day)
