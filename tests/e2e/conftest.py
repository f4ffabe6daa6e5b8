"""Fixtures for the end-to-end tests: a throw-away instance and warehouse for a real `dagster dev`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.graphql_client import pipeline_env, prepare_dagster_home
from tests.helpers import SMALL_SOURCE


@dataclass(frozen=True)
class E2EPaths:
    warehouse: Path
    dagster_home: Path
    server_log: Path
    env: dict[str, str]


@pytest.fixture
def e2e(tmp_path: Path) -> E2EPaths:
    """A temporary DAGSTER_HOME (with the pipeline's dagster.yaml) and warehouse, on the tiny synthetic market."""
    pytest.importorskip("dagster_webserver")
    home = prepare_dagster_home(tmp_path / "dagster_home")
    warehouse = tmp_path / "warehouse" / "wh.duckdb"
    return E2EPaths(
        warehouse=warehouse,
        dagster_home=home,
        server_log=tmp_path / "dagster_dev.log",
        env=pipeline_env(warehouse, home, SMALL_SOURCE),
    )
