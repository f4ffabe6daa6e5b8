"""The code location: every asset, check, job, schedule and sensor, wired to resources from the settings."""

from __future__ import annotations

import dagster as dg

from assets.bars import build_bars_asset, build_bars_checks, calendar, universe
from assets.benchmark import benchmark_results
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
    _open_cached,
)
from pipeline.segments import parse_segments
from pipeline.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    segments = SegmentsResource()
    if settings.segments:
        seg = parse_segments(settings.segments)
        segments = SegmentsResource(
            train_start=seg.train[0].isoformat(),
            train_end=seg.train[1].isoformat(),
            valid_start=seg.valid[0].isoformat(),
            valid_end=seg.valid[1].isoformat(),
            test_start=seg.test[0].isoformat(),
            test_end=seg.test[1].isoformat(),
        )
    return {
        "warehouse": WarehouseResource(path=settings.warehouse),
        "source": MarketSourceResource(
            uri=settings.source,
            universe=settings.universe,
            benchmark=settings.benchmark,
            on_bad_file=settings.on_bad_file,
        ),
        "compute": ComputeResource(device=settings.device, profile=settings.profile),
        "segments": segments,
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    # The feature sets first: a bad PIPELINE_FEATURES file fails the load before anything else is touched.
    catalog.activate(settings.features)
    source = _open_cached(settings.source, settings.on_bad_file)
    source.check_universe(settings.universe)
    trading_days = source.calendar()
    partitions = daily_partitions(trading_days[0], trading_days[-1], settings.timezone)
    models = list(model_config_names())
    assets = [
        calendar,
        universe,
        build_bars_asset(partitions),
        *build_feature_assets(partitions),
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
