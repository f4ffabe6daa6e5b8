"""The batched SQLite event log (pipeline/event_log.py) and the dagster.yaml that configures it: a range run
records exactly what Dagster's own storage records (every partition's materialization, the asset's latest
entry, the indexed tags, the UI's partition status), in batches, and an instance written by an earlier version
is upgraded in place with its runs kept."""

import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from pipeline.event_log import BatchedSqliteEventLogStorage
from pipeline.instance import BASE_YAML, dagster_yaml, ensure_dagster_home, event_log_yaml, upgraded_yaml

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")
KEY = dg.AssetKey("daily")
# The dagster.yaml the pipeline wrote before the batched event log (no storage entry: Dagster's own SQLite).
OLD_YAML = BASE_YAML


@dg.asset(partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run(), code_version="1")
def daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


def _range_run(instance: dg.DagsterInstance, start: str, end: str) -> str:
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    result = dg.materialize([daily], instance=instance, tags=tags)
    assert result.success
    return result.run_id


def _instance(home: Path, yaml_text: str | None, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    home.mkdir()
    if yaml_text is not None:
        (home / "dagster.yaml").write_text(yaml_text)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.from_config(str(home))


def _index_rows(home: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(home / "history" / "runs" / "index.db") as con:
        return {
            "events": con.execute(
                "select dagster_event_type, partition from event_logs where asset_key is not null "
                "order by partition, dagster_event_type"
            ).fetchall(),
            # Joined on the event id: each tag row must point at its own partition's event.
            "tags": con.execute(
                "select t.asset_key, e.partition, t.key, t.value from asset_event_tags t "
                "join event_logs e on e.id = t.event_id order by 1, 2, 3, 4"
            ).fetchall(),
        }


def _status(instance: dg.DagsterInstance) -> set[str]:
    cache = get_and_update_asset_status_cache_value(instance, KEY, PARTITIONS)
    assert cache is not None
    return set(cache.deserialize_materialized_partition_subsets(PARTITIONS).get_partition_keys())


def test_range_run_records_what_dagsters_storage_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "7")  # 41 partitions: five full batches and a short one
    singles: list[str] = []
    store_event = BatchedSqliteEventLogStorage.store_event

    def counting_store_event(self, event):  # noqa: ANN001, ANN202
        singles.append(event.dagster_event_type)
        return store_event(self, event)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "store_event", counting_store_event)
    ours = ensure_dagster_home_at(tmp_path / "ours", monkeypatch)
    theirs = _instance(tmp_path / "theirs", OLD_YAML, monkeypatch)
    assert isinstance(ours.event_log_storage, BatchedSqliteEventLogStorage)
    assert not isinstance(theirs.event_log_storage, BatchedSqliteEventLogStorage)

    expected = {k for k in PARTITIONS.get_partition_keys() if "2024-01-10" <= k <= "2024-02-19"}
    for instance in (ours, theirs):
        run_id = _range_run(instance, "2024-01-10", "2024-02-19")
        assert instance.get_materialized_partitions(KEY) == expected
        assert _status(instance) == expected
        record = instance.get_asset_records([KEY])[0].asset_entry
        assert record.last_run_id == run_id
        assert record.last_materialization_record.event_log_entry.dagster_event.partition == "2024-02-19"
        newest = instance.fetch_materializations(KEY, limit=1).records[0]
        assert newest.storage_id == record.last_materialization_record.storage_id
        assert newest.partition_key == "2024-02-19"
        mats = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        assert sorted(r.event_log_entry.dagster_event.partition for r in mats) == sorted(expected)
    # No materialization went through the one-event-per-transaction path.
    assert dg.DagsterEventType.ASSET_MATERIALIZATION not in singles
    assert _index_rows(tmp_path / "ours") == _index_rows(tmp_path / "theirs")

    # A second, overlapping run: the status and the latest entry move on, the older partitions stay.
    run_id = _range_run(ours, "2024-02-15", "2024-02-29")
    assert ours.get_materialized_partitions(KEY) == expected | {f"2024-02-{d}" for d in range(20, 30)}
    assert _status(ours) == ours.get_materialized_partitions(KEY)
    assert ours.get_asset_records([KEY])[0].asset_entry.last_run_id == run_id


def ensure_dagster_home_at(home: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_dagster_home()
    # Loadable by directory alone, without DAGSTER_HOME (as other processes and tests load an instance).
    monkeypatch.delenv("DAGSTER_HOME")
    return dg.DagsterInstance.from_config(str(home))


def test_old_instance_is_upgraded_and_keeps_its_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DAGSTER_EVENT_BATCH_SIZE", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"):
        monkeypatch.setenv(var, "")  # restored at teardown: ensure_dagster_home's defaults do not leak out
        monkeypatch.delenv(var)
    home = tmp_path / "home"
    old = _instance(home, OLD_YAML, monkeypatch)
    before = _range_run(old, "2024-01-01", "2024-01-05")
    old.dispose()

    upgraded = ensure_dagster_home_at(home, monkeypatch)
    text = (home / "dagster.yaml").read_text()
    assert text.startswith(OLD_YAML) and text.endswith(event_log_yaml(home.resolve()))
    assert isinstance(upgraded.event_log_storage, BatchedSqliteEventLogStorage)
    assert upgraded.get_run_by_id(before).status == dg.DagsterRunStatus.SUCCESS  # the run before the upgrade
    assert upgraded.get_materialized_partitions(KEY) == {f"2024-01-0{d}" for d in range(1, 6)}
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_dagster_home()  # idempotent: an upgraded file is left as it is
    assert (home / "dagster.yaml").read_text() == text


def test_upgrade_leaves_chosen_storage_and_bad_yaml_alone(tmp_path: Path) -> None:
    assert upgraded_yaml(OLD_YAML, tmp_path) == OLD_YAML.rstrip("\n") + "\n" + event_log_yaml(tmp_path)
    assert upgraded_yaml(dagster_yaml(tmp_path), tmp_path) is None
    postgres = "storage:\n  postgres:\n    postgres_url: postgresql://localhost/dagster\n"
    assert upgraded_yaml(postgres, tmp_path) is None
    assert upgraded_yaml("event_log_storage:\n  module: x\n  class: Y\n", tmp_path) is None
    assert upgraded_yaml("telemetry: [unclosed\n", tmp_path) is None
    assert upgraded_yaml("", tmp_path) == "\n" + event_log_yaml(tmp_path)


@dg.asset(
    partitions_def=PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("sane", asset="checked")],
)
def checked(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="sane", passed=True)])


def _check_rows(home: Path) -> list[tuple]:
    with sqlite3.connect(home / "history" / "runs" / "index.db") as con:
        rows = con.execute(
            "select asset_key, check_name, partition, execution_status, evaluation_event from asset_check_executions "
            "order by partition, execution_status"
        ).fetchall()
    # The event text names its run; the rest of each row must be Dagster's.
    return [(*r[:4], dg.deserialize_value(r[4]).dagster_event_type) for r in rows]


def test_range_run_check_rows_and_connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    ours = ensure_dagster_home_at(tmp_path / "ours", monkeypatch)
    theirs = _instance(tmp_path / "theirs", OLD_YAML, monkeypatch)
    tags = {"dagster/asset_partition_range_start": "2024-01-10", "dagster/asset_partition_range_end": "2024-01-19"}
    for instance in (ours, theirs):
        assert dg.materialize([checked], instance=instance, tags=tags).success
    rows = _check_rows(tmp_path / "ours")
    assert len(rows) == 11  # a planned row per partition, then the evaluation
    assert rows == _check_rows(tmp_path / "theirs")

    storage = ours.event_log_storage
    assert isinstance(storage, BatchedSqliteEventLogStorage)
    with storage.index_connection() as conn:
        # WAL files commit without an fsync; the engine is kept for the next event.
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    with storage.index_connection():
        pass
    assert len(storage._engines) <= 8 and "index" in storage._engines
