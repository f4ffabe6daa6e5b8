"""Group ``features``: Alpha158, Alpha360 and the label, daily-partitioned over the bars.

Each feature partition reads the bars of its own days plus the history its expressions need (declared to
Dagster as a lookback partition mapping), so a daily run computes one new day, while a backfill over years
runs as one pass in one run.
"""

import dagster as dg

from pipeline.partitions import window_dates
from pipeline.resources import WarehouseResource
from warehouse.feature_tables import FEATURE_TABLES, build_feature_window

GROUP = "features"
# Weekday partitions that safely cover the trading-day history / horizon the expressions need (Alpha158's
# 60-day windows over one-day changes read 61 trading days; weekday holidays come on top).
LOOKBACK_PARTITIONS = {"alpha158": 80, "alpha360": 80}
LABEL_PARTITIONS = 10

DESCRIPTIONS = {
    "alpha158": "Qlib's Alpha158 factors (KMID ... VSUMD60, 158 columns in Qlib's order), table "
    "`features_alpha158(instrument, date, ...)`, float32. VWAP0 is null when the source has no vwap.",
    "alpha360": "Qlib's Alpha360 factors (CLOSE59 ... VOLUME0: 60 days of close, open, high, low, vwap, volume "
    "relative to today's close/volume), table `features_alpha360(instrument, date, ...)`, float32.",
    "label": "The label LABEL0 = Ref($close, -2) / Ref($close, -1) - 1 (return from t+1 to t+2), table "
    "`labels(instrument, date, LABEL0)`; null until the two following trading days exist.",
}


def build_feature_asset(feature_set: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    table = FEATURE_TABLES[feature_set]
    if feature_set == "label":
        mapping = dg.TimeWindowPartitionMapping(start_offset=0, end_offset=LABEL_PARTITIONS)
    else:
        mapping = dg.TimeWindowPartitionMapping(start_offset=-LOOKBACK_PARTITIONS[feature_set], end_offset=0)

    @dg.asset(
        name=table,
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="warehouse",
        code_version="1",
        kinds={"duckdb", "polars"},
        deps=[dg.AssetDep("bars", partition_mapping=mapping)],
        description=DESCRIPTIONS[feature_set],
    )
    def _feature_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        start, end = window_dates(context)
        report = build_feature_window(warehouse.get(), feature_set, start, end)
        context.log.info(f"{table} {start}..{end}: {report.rows} rows in {report.seconds:.1f} s")
        return dg.MaterializeResult(
            metadata={
                "rows": report.rows,
                "instruments": report.instruments,
                "date_range": f"{start}..{end}",
                "bars_read": report.bars_read,
                "seconds": round(report.seconds, 3),
            }
        )

    return _feature_asset


def build_feature_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_feature_asset(name, partitions) for name in ("alpha158", "alpha360", "label")]
