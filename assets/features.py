"""Group ``features``: one daily-partitioned asset per catalog feature set (Alpha158, Alpha360, the label and
the sets of ``PIPELINE_FEATURES``), over the bars.

Each feature partition reads the bars of its own days plus the history its expressions need (declared to
Dagster as a lookback partition mapping derived from the expressions' reach), so a daily run computes one new
day, while a backfill over years runs as one pass in one run. Each asset carries two checks, evaluated on the
window the run computed (see ``features.checks``).
"""

import math

import dagster as dg

from features import catalog
from features.catalog import FeatureSetSpec
from features.checks import INF_FRACTION_WARN, NULL_FRACTION_WARN, WindowQuality, listed
from pipeline.code_versions import code_version
from pipeline.partitions import window_dates
from pipeline.resources import WarehouseResource
from workflow.features import build_feature_window

GROUP = "features"
ALL_NULL_CHECK = "no_unexpected_all_null_columns"
STATS_CHECK = "null_and_inf_fractions"


def weekday_partitions(trading_days: int) -> int:
    """Weekday partitions that safely hold ``trading_days`` trading days: weekday holidays come on top (the
    longest runs, Spring Festival and National Day, are 5-7 weekdays; 10 % covers the others of a long
    window), rounded up to a multiple of 10. Alpha158's 60 and Alpha360's 59 days give 80, the label's 2
    give 10."""
    if trading_days <= 0:
        return 0
    return 10 * math.ceil((1.1 * trading_days + 7) / 10)


def bars_mapping(spec: FeatureSetSpec) -> dg.PartitionMapping:
    """The bars partitions a window of ``spec`` reads: its lookback before and its horizon after; every
    earlier partition for an expression that reads all history (an expanding window)."""
    if spec.unbounded:
        return dg.AllPartitionMapping()
    return dg.TimeWindowPartitionMapping(
        start_offset=-weekday_partitions(spec.lookback), end_offset=weekday_partitions(spec.horizon)
    )


def _check_results(quality: WindowQuality | None) -> list[dg.AssetCheckResult]:
    if quality is None or quality.rows == 0:
        note = "no rows in the window (no trading day, or no bars yet)"
        return [
            dg.AssetCheckResult(check_name=ALL_NULL_CHECK, passed=True, description=note),
            dg.AssetCheckResult(check_name=STATS_CHECK, passed=True, description=note),
        ]
    bad, expected, warned = quality.all_null, quality.expected_null, quality.warned
    meta_common = {"rows": quality.rows, "columns": len(quality.columns)}
    all_null = dg.AssetCheckResult(
        check_name=ALL_NULL_CHECK,
        passed=not bad,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{len(bad)} column(s) all null although their fields are present: {listed(bad)}"
            if bad
            else "every column whose fields are present has values"
        ),
        metadata={
            **meta_common,
            "unexpected_all_null": dg.MetadataValue.text(listed(bad) or "none"),
            "expected_null (fields absent)": dg.MetadataValue.text(listed(expected) or "none"),
        },
    )
    stats = dg.AssetCheckResult(
        check_name=STATS_CHECK,
        passed=not warned,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(warned)} column(s) above the thresholds (null > {NULL_FRACTION_WARN:.0%} where values are "
            f"expected, or inf > {INF_FRACTION_WARN:.1%} of rows): {listed(warned)}"
            if warned
            else "null and inf fractions within the thresholds"
        ),
        metadata={
            **meta_common,
            "max_null_fraction": max(c.null_fraction for c in quality.columns),
            "inf_values": sum(c.infs for c in quality.columns),
            "per_column": dg.MetadataValue.md(quality.table_markdown()),
        },
    )
    return [all_null, stats]


def build_feature_asset(spec: FeatureSetSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    table, name = spec.table, spec.name
    lookback = "all history" if spec.unbounded else f"{spec.lookback} trading days"
    check_specs = [
        dg.AssetCheckSpec(
            ALL_NULL_CHECK,
            asset=table,
            description="No column is all null in the run's window where its fields are present and the "
            "history it needs exists (a column reading an absent field, such as VWAP0 without vwap, is expected "
            "null).",
        ),
        dg.AssetCheckSpec(
            STATS_CHECK,
            asset=table,
            description=f"Per column: null fraction and inf count in the run's window; a warning when a column "
            f"is null on more than {NULL_FRACTION_WARN:.0%} of the rows it should have values on or inf on more "
            f"than {INF_FRACTION_WARN:.1%} of the rows.",
        ),
    ]

    @dg.asset(
        name=table,
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="warehouse",
        code_version=code_version(__name__, spec.code_version),
        kinds={"duckdb", "polars"},
        deps=[dg.AssetDep("bars", partition_mapping=bars_mapping(spec))],
        description=f"{spec.description} Lookback {lookback}, horizon {spec.horizon}; source {spec.source}.",
        check_specs=check_specs,
        metadata={"feature_set": name, "source": spec.source, "n_columns": len(spec.columns)},
    )
    def _feature_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        start, end = window_dates(context)
        report = build_feature_window(warehouse.get(), name, start, end, inspect=True)
        context.log.info(f"{table} {start}..{end}: {report.rows} rows in {report.seconds:.1f} s")
        return dg.MaterializeResult(
            metadata={
                "rows": report.rows,
                "instruments": report.instruments,
                "date_range": f"{start}..{end}",
                "bars_read": report.bars_read,
                "seconds": round(report.seconds, 3),
            },
            check_results=_check_results(report.quality),
        )

    return _feature_asset


def build_feature_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """One asset per set of the catalog in force, catalog order."""
    return [build_feature_asset(spec, partitions) for spec in catalog.active().values()]
