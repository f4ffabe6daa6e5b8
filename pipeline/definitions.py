"""The code location: every asset, check, job, schedule and sensor, wired to resources from the settings."""

from __future__ import annotations

import dagster as dg

from assets.bars import build_bars_asset, build_bars_checks, calendar, universe
from assets.benchmark import benchmark_results
from assets.concepts import concepts
from assets.evaluation import build_evaluation_assets
from assets.features import build_feature_assets
from assets.models import build_model_assets
from features import catalog
from models.config import model_config_names
from pipeline.automation import build_jobs, build_schedule, build_sensor
from pipeline.partitions import daily_partitions
from pipeline.resources import (
    ComputeResource,
    MarketSourceResource,
    SegmentsResource,
    WarehouseResource,
    open_source_cached,
)
from pipeline.settings import Settings
from workflow.segments import parse_segments


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    segments = SegmentsResource.from_segments(parse_segments(settings.segments)) if settings.segments else None
    return {
        "warehouse": WarehouseResource(path=settings.warehouse),
        "source": MarketSourceResource(
            uri=settings.source,
            universe=settings.universe,
            benchmark=settings.benchmark,
            on_bad_file=settings.on_bad_file,
        ),
        "compute": ComputeResource(device=settings.device),
        "segments": segments or SegmentsResource(),
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    # The feature sets first: a bad PIPELINE_FEATURES file fails the load before anything else is touched.
    catalog.activate(settings.features)
    source = open_source_cached(settings.source, settings.on_bad_file)
    source.check_universe(settings.universe)
    trading_days = source.calendar()
    partitions = daily_partitions(trading_days[0], trading_days[-1], settings.timezone)
    models = list(model_config_names())
    assets = [
        calendar,
        universe,
        build_bars_asset(partitions),
        *build_feature_assets(partitions),
        concepts,
        *build_model_assets(partitions, settings.profile),
        *build_evaluation_assets(models),
        benchmark_results,
    ]
    return dg.Definitions(
        assets=assets,
        asset_checks=build_bars_checks(settings.max_bad_price_fraction),
        jobs=build_jobs(models),
        schedules=[build_schedule(settings, trading_days[-1])],
        sensors=[build_sensor(settings, trading_days[-1])],
        resources=build_resources(settings),
    )
