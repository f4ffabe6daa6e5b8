"""The persistent Dagster instance inside the repository, so headless runs show up in `make ui`."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import yaml

from pipeline.settings import REPO_ROOT

# The event log: Dagster's SQLite storage, with a batch of asset events (a range run's partitions) written in
# one transaction per database instead of one per event (see pipeline/event_log.py). Its base_dir is Dagster's
# own event-log location (same files), written out so that the instance also loads without DAGSTER_HOME set
# (InstanceRef.from_dir).
EVENT_LOG_STORAGE = """\
event_log_storage:
  # Dagster's SQLite event log (same files as before), but a range run's per-partition events are
  # written in one transaction per batch (DAGSTER_EVENT_BATCH_SIZE), not one per event.
  module: pipeline.event_log
  class: BatchedSqliteEventLogStorage
  config:
    base_dir: {base_dir}
"""
BASE_YAML = """\
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


def event_log_yaml(home: Path) -> str:
    return EVENT_LOG_STORAGE.format(base_dir=json.dumps(os.path.join(str(home), "history", "runs", "")))


def dagster_yaml(home: Path) -> str:
    return BASE_YAML + event_log_yaml(home)


STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")
# Asset events of one step output (one per partition of a range run) that Dagster hands to the storage at once.
EVENT_BATCH_SIZE = "1000"


def configure_event_log() -> None:
    """Dagster's switches (environment variables, read at each event) that keep a range run's bookkeeping
    small: one planned event per asset instead of one per partition, and the per-partition materializations
    of a step handed to the event log storage in batches (which pipeline.event_log writes in one transaction)."""
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)


def upgraded_yaml(text: str, home: Path) -> str | None:
    """The instance configuration with the batched event log added, or None to leave it as it is: when it
    already names a storage (the batched one, or one the user chose, e.g. Postgres) or does not parse (Dagster
    reports that itself). An instance written by an earlier version keeps its runs: same files."""
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return None
    if not isinstance(config, dict) or any(k in config for k in STORAGE_KEYS):
        return None
    return text.rstrip("\n") + "\n" + event_log_yaml(home)


@contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    with open(home / ".instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic: no reader sees a half-written file


def ensure_dagster_home() -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    with _home_lock(home):
        if not config.exists():
            _write_atomically(config, dagster_yaml(home))
        else:
            new = upgraded_yaml(config.read_text(), home)
            if new is not None:
                _write_atomically(config, new)
    os.environ["DAGSTER_HOME"] = str(home)
    configure_event_log()
    return home


def persistent_instance() -> dg.DagsterInstance:
    home = ensure_dagster_home()
    # Two processes creating a fresh instance's SQLite storage at once race ("table runs already exists").
    with _home_lock(home):
        return dg.DagsterInstance.get()
