"""Group ``bars``: the source's calendar, its universe membership and the daily bars, with quality checks."""

import dagster as dg

from pipeline.code_versions import code_version
from pipeline.partitions import window_dates
from pipeline.resources import MarketSourceResource, WarehouseResource
from warehouse import quality
from warehouse.ingest import ingest_bars, sync_calendar, sync_membership
from warehouse.sources.base import SkippedFile

GROUP = "bars"


@dg.asset(
    group_name=GROUP,
    pool="warehouse",
    code_version=code_version(__name__),
    kinds={"duckdb"},
    description="The source's trading calendar, table `calendar(date)`.",
)
def calendar(source: MarketSourceResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    src = source.open()
    n = sync_calendar(src, warehouse.get())
    cal = src.calendar()
    return dg.MaterializeResult(
        metadata={"trading_days": n, "first_day": str(cal[0]), "last_day": str(cal[-1]), "source": src.uri}
    )


@dg.asset(
    group_name=GROUP,
    pool="warehouse",
    code_version=code_version(__name__),
    kinds={"duckdb"},
    deps=[calendar],
    description="Universe membership ranges, table `instruments(universe, instrument, start_date, end_date)`; "
    "PIPELINE_UNIVERSE names the universe (default: every instrument of the source).",
)
def universe(source: MarketSourceResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    src = source.open()
    wh = warehouse.get()
    n = sync_membership(src, wh, source.universe, source.benchmark_instrument())
    members = wh.query(
        "select count(distinct instrument) as n, min(start_date) as s, max(end_date) as e from instruments"
    )
    row = members.row(0, named=True)
    skipped = src.skipped_membership()
    metadata: dict = {
        "universe": source.universe or "all",
        "membership_ranges": n,
        "instruments": row["n"],
        "first_day": str(row["s"]),
        "last_day": str(row["e"]),
        "benchmark": source.benchmark_instrument() or "none",
        "skipped_lines": len(skipped),
    }
    if skipped:
        metadata["skipped"] = _skipped_table(skipped)
    return dg.MaterializeResult(metadata=metadata)


def _skipped_table(skipped: list[SkippedFile]) -> dg.MetadataValue:
    return dg.MetadataValue.md(
        "| file | reason |\n|---|---|\n" + "\n".join(f"| `{s.path}` | {s.reason.replace('|', '/')} |" for s in skipped)
    )


def build_bars_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="bars",
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="warehouse",
        code_version=code_version(__name__),
        kinds={"duckdb", "polars"},
        deps=[calendar, universe],
        description="Daily bars of the universe's members and the benchmark, table `bars(instrument, date, open, "
        "high, low, close, volume, factor, change, vwap, ...)`, adjusted prices. A partition (or a backfill "
        "range, in one run) replaces exactly its dates in one transaction.",
    )
    def bars(
        context: dg.AssetExecutionContext, source: MarketSourceResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        start, end = window_dates(context)
        report = ingest_bars(source.open(), warehouse.get(), start, end, source.universe, source.benchmark_instrument())
        context.log.info(
            f"bars {start}..{end}: {report.rows} rows, {report.instruments} instruments, "
            f"{report.rows_per_second:,.0f} rows/s"
        )
        metadata: dict = {
            "rows": report.rows,
            "instruments": report.instruments,
            "trading_days": report.trading_days,
            "date_range": f"{start}..{end}",
            "seconds": round(report.seconds, 3),
            "rows_per_second": round(report.rows_per_second, 1),
            "skipped_files": len(report.skipped),
        }
        if report.skipped:
            metadata["skipped"] = _skipped_table(report.skipped)
        return dg.MaterializeResult(metadata=metadata)

    return bars


def _result(outcome: quality.CheckOutcome, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    metadata = {
        k: (dg.MetadataValue.text("\n".join(v) or "none") if isinstance(v, list) else v)
        for k, v in outcome.metadata.items()
    }
    if isinstance(metadata.get("offending_rows"), str):
        metadata["offending_rows"] = dg.MetadataValue.md(metadata["offending_rows"])
    if outcome.severity is not None:  # the check decided: a failed WARN does not block, a failed ERROR does
        severity = dg.AssetCheckSeverity.WARN if outcome.severity == "warn" else dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckResult(
        passed=outcome.passed, severity=severity, description=outcome.description, metadata=metadata
    )


def build_bars_checks(
    max_bad_price_fraction: float = quality.DEFAULT_MAX_BAD_PRICE_FRACTION,
) -> list[dg.AssetChecksDefinition]:
    """The bars checks; price-rule violations in at most ``max_bad_price_fraction`` of the rows
    (PIPELINE_MAX_BAD_PRICE_FRACTION) are a warning, more block downstream."""

    @dg.asset_check(asset="bars", blocking=True, description="Every (instrument, date) appears once.")
    def bars_unique_keys(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return _result(quality.check_unique_keys(warehouse.get()), dg.AssetCheckSeverity.ERROR)

    @dg.asset_check(
        asset="bars",
        blocking=True,
        description="low <= open, close <= high (within float32 rounding); prices positive; volume non-negative. "
        f"Violations in at most {max_bad_price_fraction:.4%} of the rows (PIPELINE_MAX_BAD_PRICE_FRACTION) are a "
        "warning with the rows listed; more fail with ERROR and block downstream.",
    )
    def bars_price_sanity(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        outcome = quality.check_price_sanity(warehouse.get(), max_bad_price_fraction)
        return _result(outcome, dg.AssetCheckSeverity.ERROR)

    @dg.asset_check(asset="bars", blocking=True, description="Every bar is dated on a trading day of the calendar.")
    def bars_dates_in_calendar(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return _result(quality.check_dates_in_calendar(warehouse.get()), dg.AssetCheckSeverity.ERROR)

    @dg.asset_check(
        asset="bars",
        description="Members of the universe that have no bars in their membership ranges (listed; a warning).",
    )
    def bars_membership_coverage(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return _result(quality.check_membership_coverage(warehouse.get()), dg.AssetCheckSeverity.WARN)

    return [bars_unique_keys, bars_price_sanity, bars_dates_in_calendar, bars_membership_coverage]


__all__ = ["build_bars_asset", "build_bars_checks", "calendar", "universe"]
