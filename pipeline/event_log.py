"""An embedded SQLite event log that writes a batch of asset events in one transaction per database.

A range run materializes one event per partition per asset: years of daily partitions are thousands of events
at the end of one step, and Dagster hands them to the storage as one batch (when ``DAGSTER_EVENT_BATCH_SIZE``
is set, see ``pipeline.instance``). Dagster's own SQLite storage stores a batch event by event: per event a
new connection and commit on the run's database plus a transaction on the cross-run index (about 15 ms each
on a laptop disk). This storage writes the same rows (every partition's materialization, its indexed tags and
the asset's latest-event entry), so the UI's partition status and every query read exactly what Dagster's
storage would have written, but with one commit per database per batch.

Per event the rest is also Dagster's own, minus three costs that do not change what is stored: the engine of
each database file is kept instead of created and disposed per event, SQLite commits without an fsync
(``synchronous=NORMAL``, WAL files only; see ``_relaxed_sync``), and a range run's planned check evaluations
serialize their event once instead of once per partition.

It is configured in the instance's ``dagster.yaml`` (written and upgraded by ``pipeline.instance``):

.. code-block:: yaml

    event_log_storage:
      module: pipeline.event_log
      class: BatchedSqliteEventLogStorage

``base_dir`` defaults to Dagster's own location for the event log, ``$DAGSTER_HOME/history/runs``, so the
runs an instance recorded before the switch stay where they were.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import dagster._check as check
from dagster import Field, StringSource
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import ASSET_EVENTS, AssetCheckEvaluationPlanned
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy import create_engine
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

# Engines kept per database file (the index and the most recent runs'); a long-lived process (the webserver)
# touches many runs, so the cache is bounded.
ENGINE_CACHE = 8


def default_base_dir() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise DagsterInvariantViolationError("BatchedSqliteEventLogStorage without base_dir needs DAGSTER_HOME")
    return os.path.join(os.path.abspath(home), "history", "runs", "")


def _relaxed_sync(dbapi_connection: Any, _record: Any) -> None:
    """SQLite's synchronous=NORMAL on every connection. Dagster puts these files in WAL mode, where NORMAL
    stays safe from corruption and skips the fsync per commit (about 4 ms each on this machine's disk, and a
    run commits once or twice per event); the price is that a power cut (not a crash of the process) can lose
    the last events recorded, which a re-run of the same partitions writes again."""
    cursor = dbapi_connection.cursor()
    try:
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":  # else keep SQLite's FULL
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _batchable(event: EventLogEntry) -> bool:
    # Asset events with a key are the ones a range run multiplies; anything else (run status, asset checks)
    # keeps Dagster's own path, which also mirrors those into the index.
    return bool(
        event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS and event.get_dagster_event().asset_key
    )


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log storage with ``store_event_batch`` writing one transaction per database."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir or default_base_dir(), inst_data=inst_data)

    def _engine(self, shard: str) -> Engine:
        """One engine per database file, kept (Dagster's storage creates and disposes one per event). With
        NullPool every use still opens its own SQLite connection, so nothing is shared between threads or
        across a fork; only SQLAlchemy's engine set-up is saved."""
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            sqlalchemy_event.listen(engine, "connect", _relaxed_sync)
            self._engines[shard] = engine
            while len(self._engines) > ENGINE_CACHE:
                self._engines.popitem(last=False)[1].dispose()
        else:
            self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's SqliteEventLogStorage._connect, with the engine kept instead of created per call.
        with self._db_lock:
            check.str_param(shard, "shard")
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's rows (one per planned partition), with the event serialized once for all of them and one
        executemany: Dagster serializes it again for every partition of a range run (522 times for two years of
        weekdays) into one statement with a parameter list per partition."""
        planned = cast("AssetCheckEvaluationPlanned", check.not_none(event.dagster_event).event_specific_data)
        partition_keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        serialized = serialize_value(event)
        timestamp = self._event_insert_timestamp(event)
        rows = [
            dict(
                asset_key=planned.asset_key.to_string(),
                check_name=planned.check_name,
                partition=partition_key,
                run_id=event.run_id,
                execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
                evaluation_event=serialized,
                evaluation_event_timestamp=timestamp,
                evaluation_event_storage_id=event_id,
            )
            for partition_key in partition_keys
        ]
        # executemany: one compiled statement, not one multi-row VALUES of 8 parameters per partition.
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), rows)

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        events = list(events)
        check.sequence_param(events, "events", EventLogEntry)
        if len({e.run_id for e in events}) != 1 or not all(_batchable(e) for e in events):
            super().store_event_batch(events)  # event by event, Dagster's own way
            return
        rows = [self._event_to_row(e) for e in events]
        # The run's own database: one executemany, one commit.
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        # The cross-run index: the same rows (their ids are the storage ids asset queries return), the indexed
        # tags and each asset key's latest-event entry, in one transaction. Not nested in the connection above:
        # both take the storage's (non-reentrant) lock.
        with self.index_transaction() as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
            # This transaction holds SQLite's write lock since the insert, so the newest len(rows) ids are
            # this batch's, in insertion order.
            newest = conn.execute(
                db_select([SqlEventLogStorageTable.c.id]).order_by(SqlEventLogStorageTable.c.id.desc()).limit(len(rows))
            ).fetchall()
            event_ids = [r[0] for r in reversed(newest)]
            if len(event_ids) != len(rows):
                raise DagsterInvariantViolationError("Cannot store asset event tags for null event id.")
            self._store_asset_event_tags(conn, events, event_ids)
            self._store_asset_entries(conn, events, event_ids)

    def _store_asset_entries(self, conn: Any, events: list[EventLogEntry], event_ids: list[int]) -> None:
        """What Dagster's per-event ``_store_asset_event`` leaves in the asset key table after the whole batch,
        as one insert-or-update per key. An event's entry values depend on its type only for which columns they
        set, so per key and type only the last event counts, applied in order (later ones overwrite columns);
        that also spares serializing every partition's record as a "last materialization"."""
        last: dict[tuple[str, Any], int] = {}
        for i, event in enumerate(events):
            last[(event.get_dagster_event().asset_key.to_string(), event.dagster_event_type)] = i
        has_index_cols = self._has_asset_key_index_cols_on_connection(conn)
        merged: dict[str, dict[str, Any]] = {}
        for (key, _), i in sorted(last.items(), key=lambda kv: kv[1]):
            values = self._get_asset_entry_values(events[i], event_ids[i], has_index_cols)
            if values:
                merged.setdefault(key, {}).update(values)
        for key, values in merged.items():
            updated = conn.execute(AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == key))
            if not updated.rowcount:
                conn.execute(AssetKeyTable.insert().values(asset_key=key, **values))
