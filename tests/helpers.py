"""Small builders shared by the Dagster-level tests."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dagster as dg

from pipeline.settings import Settings

# Every asset of the pipeline; the benchmark group trains each model several times and has its own tests.
WHOLE_PIPELINE = "* and not group:benchmark"
SMALL_SOURCE = "synthetic:seed=3,instruments=12,start=2020-01-01,end=2020-12-31,core_size=6"


def settings_for(tmp_path: Path, source: str = SMALL_SOURCE, **overrides: str | None) -> Settings:
    base = Settings.from_env({"PIPELINE_WAREHOUSE": str(tmp_path / "wh.duckdb"), "PIPELINE_SOURCE": source})
    return Settings(**{**base.__dict__, **overrides})


def materialize_selection(
    settings: Settings,
    select: str,
    partition_key: str | None = None,
    tags: dict[str, str] | None = None,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    from pipeline.definitions import build_definitions

    defs = build_definitions(settings)
    return dg.materialize(
        assets=list(defs.assets or []) + list(defs.asset_checks or []),
        selection=dg.AssetSelection.from_string(select),
        resources=defs.resources,
        partition_key=partition_key,
        tags=tags,
        instance=instance,
        raise_on_error=raise_on_error,
    )


def range_tags(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def embedded_png(markdown: str) -> bytes:
    """The PNG a markdown data-URI image embeds (metadata plots); fails unless ``markdown`` is one."""
    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match is not None, markdown[:200]
    png = base64.b64decode(match.group(1))
    assert png.startswith(b"\x89PNG\r\n\x1a\n"), png[:16]
    return png
