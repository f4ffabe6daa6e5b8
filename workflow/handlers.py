"""The handler stage: fit a data handler's processors on the fit window and store their statistics in table
`handlers`; load them back for training and scoring."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import polars as pl

from processing.config import get_handler_config
from processing.handler import FittedHandler, fit_handler
from warehouse.store import Warehouse
from workflow.names import handler_asset
from workflow.panels import read_membership, read_panel
from workflow.segments import Segments


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
    fit_start, fit_end = segments.fit
    features, labels = read_panel(
        warehouse, config.feature_set, fit_start, fit_end, what="the train segment (the processors' fit window)"
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
            "feature_set": [config.feature_set],
            "n_rows": [features.height],
            "state": [json.dumps(state, default=str)],
        }
    )
    warehouse.replace("handlers", row, where={"handler": handler})
    return HandlerFit(handler, version, state, fitted, fit_start, fit_end, features.height)


def load_handler(warehouse: Warehouse, handler: str) -> tuple[str, dict[str, Any], FittedHandler]:
    rows = warehouse.query("select handler_version, state from handlers where handler = ?", [handler])
    if rows.height == 0:
        raise ValueError(f"handler {handler!r} has not been fitted yet; materialize {handler_asset(handler)} first")
    version, state_text = rows.row(0)
    state = json.loads(state_text)
    return version, state, FittedHandler.from_state(state)
