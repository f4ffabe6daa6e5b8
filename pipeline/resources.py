"""Dagster resources: thin handles on the warehouse, the market source and the compute device."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg

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
