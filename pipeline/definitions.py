"""The code location: every asset, check, job, schedule and sensor, wired to resources from the settings."""

from __future__ import annotations

import dagster as dg

from assets.bars import build_bars_asset, build_bars_checks, calendar, universe
from assets.features import build_feature_assets
from pipeline.partitions import daily_partitions
from pipeline.resources import ComputeResource, MarketSourceResource, SegmentsResource, WarehouseResource, _open_cached
from pipeline.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(path=settings.warehouse),
        "source": MarketSourceResource(
            uri=settings.source,
            universe=settings.universe,
            benchmark=settings.benchmark,
            on_bad_file=settings.on_bad_file,
        ),
        "compute": ComputeResource(device=settings.device, profile=settings.profile),
        "segments": SegmentsResource(),
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    source = _open_cached(settings.source, settings.on_bad_file)
    source.check_universe(settings.universe)
    partitions = daily_partitions(source.calendar()[0], settings.timezone)
    assets = [calendar, universe, build_bars_asset(partitions), *build_feature_assets(partitions)]
    checks = build_bars_checks()
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        resources=build_resources(settings),
    )
