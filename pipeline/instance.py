"""The persistent Dagster instance inside the repository, so headless runs show up in `make ui`."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import dagster as dg

from pipeline.settings import REPO_ROOT

DAGSTER_YAML = """\
# Written by the pipeline on first use; edit freely.
telemetry:
  enabled: false
concurrency:
  pools:
    # DuckDB admits one writing process: every writer asset sits in the 'warehouse' pool, and
    # training steps in the 'training' pool, so two trainings do not fight for one GPU.
    default_limit: 1
  runs:
    max_concurrent_runs: 4
"""


def configure_event_log() -> None:
    """A backfill range run records one planned event per asset instead of one per partition (Dagster's own
    switch), which keeps a run over years of daily partitions from spending minutes in the event log."""
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")


def ensure_dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        tmp = config.with_name(f".dagster.yaml.{os.getpid()}")
        tmp.write_text(DAGSTER_YAML)
        os.replace(tmp, config)  # atomic: no reader sees a half-written file
    os.environ["DAGSTER_HOME"] = str(home)
    configure_event_log()
    return home


def persistent_instance() -> dg.DagsterInstance:
    home = ensure_dagster_home()
    # Two processes creating a fresh instance's SQLite storage at once race ("table runs already exists").
    with open(home / ".instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return dg.DagsterInstance.get()
