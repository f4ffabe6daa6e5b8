"""Dagster resources: thin handles on the warehouse, the market source and the compute device."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import dagster as dg

from warehouse.feature_store import trading_days
from warehouse.sources import BarSource, open_source
from warehouse.store import Warehouse
from workflow.panels import latest_labelled_day
from workflow.segments import SEGMENT_NAMES, Segments, resolve_segments


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file; model artifacts live in ``artifacts/`` beside it."""

    path: str
    lock_timeout_s: float = 300.0

    def get(self) -> Warehouse:
        return Warehouse(self.path, lock_timeout_s=self.lock_timeout_s)

    @property
    def artifact_dir(self) -> Path:
        return Path(self.path).expanduser().resolve().parent / "artifacts"


@lru_cache(maxsize=8)
def open_source_cached(uri: str, on_bad_file: str) -> BarSource:
    """``open_source``, once per process and arguments: the synthetic market is generated in memory, and a
    definitions load and the run it starts read the same calendar. ``open_source_cached.cache_clear()`` sees new
    days (the sensor does)."""
    return open_source(uri, on_bad_file)


class MarketSourceResource(dg.ConfigurableResource):
    """Where bars come from (PIPELINE_SOURCE), which universe (PIPELINE_UNIVERSE) and the benchmark."""

    uri: str = "synthetic"
    universe: str | None = None
    benchmark: str | None = None
    on_bad_file: str = "fail"

    def open(self) -> BarSource:
        return open_source_cached(self.uri, self.on_bad_file)

    def benchmark_instrument(self) -> str | None:
        return self.benchmark or self.open().default_benchmark()


class ComputeResource(dg.ConfigurableResource):
    """Training and scoring device: auto (CUDA when present), cpu or cuda."""

    device: str = "auto"


# Runs with this tag (the daily_retrain job's) train on segments rolling up to the latest labelled day.
ROLLING_SEGMENTS_TAG = "pipeline/segments"


class SegmentsResource(dg.ConfigurableResource):
    """Train / valid / test segments (inclusive dates, YYYY-MM-DD). Unset dates default from the calendar
    (nine years or more: 7 train, 2 valid, rest test; shorter: 60/20/20 %). With ``rolling``, the valid
    segment ends at the latest labelled day and train precedes it, each as long as the defaults: that is
    what the scheduled retraining uses (see ``workflow.segments``)."""

    train_start: str | None = None
    train_end: str | None = None
    valid_start: str | None = None
    valid_end: str | None = None
    test_start: str | None = None
    test_end: str | None = None
    rolling: bool = False

    def _dates(self) -> dict[str, tuple[str | None, str | None]]:
        return {n: (getattr(self, f"{n}_start"), getattr(self, f"{n}_end")) for n in SEGMENT_NAMES}

    def evaluation_window(self, calendar: list[dt.date]) -> tuple[dt.date, dt.date]:
        """The test segment as configured (never rolling): the window signal analysis and backtests cover."""
        return self.resolve(calendar, rolling=False).test

    def resolve(
        self, calendar: list[dt.date], latest_labelled: dt.date | None = None, rolling: bool | None = None
    ) -> Segments:
        rolling = self.rolling if rolling is None else rolling
        return resolve_segments(calendar, self._dates(), rolling=rolling, latest_labelled=latest_labelled)

    def for_run(self, context: dg.AssetExecutionContext, warehouse: Warehouse) -> Segments:
        """The segments of the run ``context`` belongs to: rolling when configured or when the run is tagged so."""
        rolling = self.rolling or context.run.tags.get(ROLLING_SEGMENTS_TAG) == "rolling"
        return self.resolve(trading_days(warehouse), latest_labelled_day(warehouse), rolling=rolling)

    @classmethod
    def from_segments(cls, segments: Segments) -> SegmentsResource:
        return cls(**{f"{n}_{end}": getattr(segments, n)[i].isoformat() for n in SEGMENT_NAMES
                      for i, end in enumerate(("start", "end"))})  # fmt: skip
