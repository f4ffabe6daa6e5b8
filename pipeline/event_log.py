"""An embedded SQLite event log that writes a batch of asset events in one transaction per database.

A range run materializes one event per partition per asset: years of daily partitions are thousands of events
at the end of one step, and Dagster hands them to the storage as one batch (when ``DAGSTER_EVENT_BATCH_SIZE``
is set, see ``pipeline.instance``). Dagster's own SQLite storage stores a batch event by event: per event a
new connection and commit on the run's database plus a transaction on the cross-run index (about 15 ms each
on a laptop disk). This storage writes the same rows (every partition's materialization, its indexed tags and
the asset's latest-event entry), so the UI's partition status and every query read exactly what Dagster's
storage would have written, but with one commit per database per batch.

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
from collections.abc import Sequence
from typing import Any

import dagster._check as check
from dagster import Field, StringSource
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._serdes import ConfigurableClassData


def default_base_dir() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise DagsterInvariantViolationError("BatchedSqliteEventLogStorage without base_dir needs DAGSTER_HOME")
    return os.path.join(os.path.abspath(home), "history", "runs", "")


def _batchable(event: EventLogEntry) -> bool:
    # Asset events with a key are the ones a range run multiplies; anything else (run status, asset checks)
    # keeps Dagster's own path, which also mirrors those into the index.
    return bool(
        event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS and event.get_dagster_event().asset_key
    )


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log storage with ``store_event_batch`` writing one transaction per database."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(base_dir or default_base_dir(), inst_data=inst_data)

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
