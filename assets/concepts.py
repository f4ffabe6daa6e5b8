"""The ``concepts`` asset (group ``handlers``): HIST's stock-to-concept memberships of the universe, from the
source's ``concepts.csv`` or sectors, else derived from the train segment's bars, like the fitted handlers."""

import dagster as dg
import polars as pl

from pipeline.code_versions import code_version
from pipeline.metadata import frame_markdown
from pipeline.resources import MarketSourceResource, SegmentsResource, WarehouseResource
from workflow.concepts import fit_and_store_concepts
from workflow.names import CONCEPTS_ASSET

GROUP = "handlers"  # fitted on the train segment when derived, like the handler assets (assets/models.py)


@dg.asset(
    name=CONCEPTS_ASSET,
    group_name=GROUP,
    pool="warehouse",
    code_version=code_version(__name__),
    kinds={"duckdb", "numpy"},
    deps=["bars", "universe"],
    description="HIST's stock-to-concept memberships of the universe, tables `concepts(instrument, concept)` and "
    "`concept_source` (the one line saying where they came from). From the source's `concepts.csv` (Qlib or CSV "
    "directory) or the synthetic market's sectors; when the source has none, clusters of daily-return correlation "
    "over the train segment (only), from the warehouse's bars.",
)
def concepts(
    context: dg.AssetExecutionContext,
    source: MarketSourceResource,
    warehouse: WarehouseResource,
    segments: SegmentsResource,
) -> dg.MaterializeResult:
    seg = segments.for_run(context, warehouse.get())
    report = fit_and_store_concepts(warehouse.get(), source.open(), seg)
    context.log.info(f"concepts: {report.concepts.source}")
    metadata: dict = {
        "source": report.concepts.source,
        "origin": report.origin,
        "concepts_version": report.version,
        "concepts": report.concepts.n_concepts,
        "universe_instruments": report.universe,
        "instruments_covered": report.covered,
        "instruments_uncovered": report.uncovered,
        "instruments_outside_universe": report.outside_universe,
        "segments": seg.describe(),
        "fit_window": f"{report.fit[0]}..{report.fit[1]}" if report.fit else "none (the source's own concepts)",
        "seconds": round(report.seconds, 3),
        "concept_sizes": dg.MetadataValue.md(frame_markdown(report.concepts.sizes())),
        "skipped_lines": len(report.skipped),
    }
    if report.skipped:
        lines = pl.DataFrame({"line": [s.path for s in report.skipped], "reason": [s.reason for s in report.skipped]})
        metadata["skipped"] = dg.MetadataValue.md(frame_markdown(lines))
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(report.version))
