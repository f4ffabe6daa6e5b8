"""Dagster resources: thin handles on the warehouse, the market source and the compute device."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import dagster as dg

from pipeline.segments import Segments, default_segments
from warehouse.sources import BarSource, open_source
from warehouse.store import Warehouse


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
def _open_cached(uri: str, on_bad_file: str) -> BarSource:
    # The synthetic market is generated in memory; build it once per process.
    return open_source(uri, on_bad_file)


class MarketSourceResource(dg.ConfigurableResource):
    """Where bars come from (PIPELINE_SOURCE), which universe (PIPELINE_UNIVERSE) and the benchmark."""

    uri: str = "synthetic"
    universe: str | None = None
    benchmark: str | None = None
    on_bad_file: str = "fail"

    def open(self) -> BarSource:
        return _open_cached(self.uri, self.on_bad_file)

    def benchmark_instrument(self) -> str | None:
        return self.benchmark or self.open().default_benchmark()


class ComputeResource(dg.ConfigurableResource):
    """Training device: auto (CUDA when present), cpu or cuda; and the training profile."""

    device: str = "auto"
    profile: str = "benchmark"


class SegmentsResource(dg.ConfigurableResource):
    """Train / valid / test segments (inclusive dates, YYYY-MM-DD). Unset dates default from the calendar
    (nine years or more: 7 train, 2 valid, rest test; shorter: 60/20/20 %). With ``rolling``, the valid
    segment ends at the latest labelled day and train precedes it, each as long as the defaults: that is
    what the scheduled retraining uses."""

    train_start: str | None = None
    train_end: str | None = None
    valid_start: str | None = None
    valid_end: str | None = None
    test_start: str | None = None
    test_end: str | None = None
    rolling: bool = False

    def evaluation_window(self, calendar: list[dt.date]) -> tuple[dt.date, dt.date]:
        """The test segment as configured (never rolling): the window signal analysis and backtests cover."""
        return SegmentsResource(**{**self.model_dump(), "rolling": False}).resolve(calendar).test

    def resolve(
        self, calendar: list[dt.date], latest_labelled: dt.date | None = None, rolling: bool | None = None
    ) -> Segments:
        base = default_segments(calendar)
        if (self.rolling if rolling is None else rolling) and latest_labelled is not None:
            days = [d for d in calendar if d <= latest_labelled]
            n_valid = sum(1 for d in calendar if base.valid[0] <= d <= base.valid[1])
            n_train = sum(1 for d in calendar if base.train[0] <= d <= base.train[1])
            if len(days) < n_valid + 30:
                raise ValueError(f"rolling segments need more than {n_valid + 30} labelled days, have {len(days)}")
            valid = (days[-n_valid], days[-1])
            train = (days[max(0, len(days) - n_valid - n_train)], days[-n_valid - 1])
            later = [d for d in calendar if d > valid[1]]
            test = (later[0], calendar[-1]) if later else (valid[1] + dt.timedelta(days=1),) * 2
            return Segments(train=train, valid=valid, test=test)
        pick = {
            "train": (self.train_start, self.train_end),
            "valid": (self.valid_start, self.valid_end),
            "test": (self.test_start, self.test_end),
        }
        out = {}
        for name, (lo, hi) in pick.items():
            default = getattr(base, name)
            out[name] = (
                dt.date.fromisoformat(lo) if lo else default[0],
                dt.date.fromisoformat(hi) if hi else default[1],
            )
        return Segments(**out)
