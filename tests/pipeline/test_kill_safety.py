"""A run killed with SIGKILL in the middle of a warehouse write leaves the warehouse exactly as it was.

The victim is a real headless run (`python -m pipeline materialize`) whose source changed (another seed and
many more instruments, so every stored value and the row count would change). A test-only hook, installed in
the child process before the pipeline loads, wraps the warehouse's write connections so that the process
announces itself and stalls right before the commit that follows the insert of the new rows: the old slice
is deleted and the new rows are inserted (DuckDB has already written large inserts' blocks into the file),
nothing is committed. Stalling at the commit after the insert, rather than at the first commit, also catches a
write split into several transactions. The parent kills it there, reopens the file as the next run would,
and compares."""

from __future__ import annotations

import datetime as dt
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipeline.definitions import build_definitions
from pipeline.resources import open_source_cached
from pipeline.settings import REPO_ROOT
from tests.e2e.graphql_client import pipeline_env, prepare_dagster_home
from tests.helpers import materialize_selection, range_tags, settings_for
from warehouse.store import Warehouse

BASE_SOURCE = "synthetic:seed=3,instruments=12,start=2020-01-01,end=2020-04-30,core_size=6"
# Same calendar, different values, ~170k bars: more than one DuckDB row group, so the uncommitted insert
# writes data blocks into the file before the kill.
CHANGED_SOURCE = "synthetic:seed=4,instruments=2000,start=2020-01-01,end=2020-04-30,core_size=6"
SMALL_CHANGED_SOURCE = "synthetic:seed=4,instruments=12,start=2020-01-01,end=2020-04-30,core_size=6"
START, END = dt.date(2020, 1, 2), dt.date(2020, 4, 30)
MARKER = "STALLED-INSIDE-WRITE"
REACH_TIMEOUT_S = 240
ORDER = {"calendar": "date", "instruments": "universe, instrument, start_date", "bars": "instrument, date"}

# Runs the pipeline's CLI with a hook that stalls inside the write transaction on table KILL_TABLE, just
# before the commit that follows the insert of the new rows (the delete of the old slice is done by then).
CHILD = f"""
import os, sys, time
from warehouse import store

TABLE = os.environ["KILL_TABLE"].lower()

class _Stalling:
    def __init__(self, con):
        self._con, self._inserted = con, False
    def __getattr__(self, name):
        return getattr(self._con, name)
    def _maybe_stall(self):
        if self._inserted:
            print("{MARKER}", flush=True)
            time.sleep(3600)
    def execute(self, sql, *args, **kwargs):
        text = " ".join(str(sql).split()).lower()
        if text == "commit":
            self._maybe_stall()
        out = self._con.execute(sql, *args, **kwargs)
        if text.startswith('insert into "' + TABLE + '"'):
            self._inserted = True
        return out
    def commit(self):
        self._maybe_stall()
        return self._con.commit()

_open = store.Warehouse._open

def _open_stalling(self, read_only):
    con = _open(self, read_only)
    return con if read_only else _Stalling(con)

store.Warehouse._open = _open_stalling

from pipeline.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _read_all(path: Path, tables: list[str]) -> dict[str, pl.DataFrame]:
    # A plain read-write open, as the next run does: DuckDB replays its write-ahead log here.
    with duckdb.connect(str(path)) as con:
        return {t: con.sql(f"select * from {t} order by {ORDER.get(t, 'instrument, date')}").pl() for t in tables}


def _kill_inside_write(tmp_path: Path, warehouse: Path, select_: str, source: str, table: str) -> Path:
    """Run the CLI on ``select_`` over START..END, wait until it stalls inside the write of ``table``,
    SIGKILL it, and return (its DAGSTER_HOME) once it is dead."""
    home = prepare_dagster_home(tmp_path / f"home_{table}")
    env = pipeline_env(warehouse, home, source, KILL_TABLE=table)
    err = tmp_path / f"child_{table}.log"
    command = [sys.executable, "-c", CHILD, "materialize", "--select", select_, "--start", str(START)]
    command += ["--end", str(END)]
    with open(err, "wb") as log:
        child = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log, start_new_session=True
        )
    try:
        deadline = time.monotonic() + REACH_TIMEOUT_S
        reached, seen = False, b""
        while not reached and time.monotonic() < deadline:
            ready, _, _ = select.select([child.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(child.stdout.fileno(), 65536)
                if not chunk:  # the child exited without reaching the write
                    break
                seen += chunk
                reached = MARKER.encode() in seen
        if not reached:
            child.poll()
            pytest.fail(
                f"the child never stalled inside the {table} write (exit code {child.returncode}); "
                f"the hook may no longer match Warehouse.replace.\n{err.read_text()[-4000:]}"
            )
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        child.stdout.close()
    return home


@pytest.fixture(scope="module")
def base_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bars, calendar and universe of the base market, materialized once; each test works on a copy."""
    root = tmp_path_factory.mktemp("kill_base")
    settings = settings_for(root, source=BASE_SOURCE)
    assert materialize_selection(settings, "group:bars", tags=range_tags(str(START), str(END))).success
    return Path(settings.warehouse)


@pytest.mark.slow
def test_killed_bars_ingest_leaves_previous_rows(base_warehouse: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    shutil.copy(base_warehouse, warehouse)
    before = _read_all(warehouse, list(ORDER))
    assert before["bars"].height > 0

    _kill_inside_write(tmp_path, warehouse, "bars", CHANGED_SOURCE, "bars")

    after = _read_all(warehouse, list(ORDER))
    for table in ORDER:
        assert after[table].equals(before[table]), f"{table} changed after the killed write"

    # The file is healthy and writable: the same ingest, not killed, replaces the slice as expected.
    settings = settings_for(tmp_path, source=CHANGED_SOURCE)
    assert settings.warehouse == str(warehouse)
    assert materialize_selection(settings, "bars", tags=range_tags(str(START), str(END))).success
    expected = open_source_cached(CHANGED_SOURCE, "fail").read_bars(None).bars
    stored = Warehouse(warehouse).query("select * from bars order by instrument, date")
    assert stored.height == expected.height > before["bars"].height
    assert not stored.select("instrument", "date", "close").equals(before["bars"].select("instrument", "date", "close"))


def _feature_asset() -> str | None:
    """A feature table asset of the current graph (its name is its table), if the graph has one yet."""
    try:
        from warehouse.feature_store import FEATURE_TABLES
    except ImportError:
        return None
    graph = build_definitions(settings_for(Path("/nonexistent"), source=BASE_SOURCE)).resolve_asset_graph()
    names = {k.to_user_string() for k in graph.get_all_asset_keys()}
    found = sorted(set(FEATURE_TABLES.values()) & names)
    return "features_alpha158" if "features_alpha158" in found else (found[0] if found else None)


@pytest.mark.slow
def test_killed_feature_write_leaves_previous_rows(base_warehouse: Path, tmp_path: Path) -> None:
    asset = _feature_asset()
    if asset is None:
        pytest.skip("no feature table asset in the graph yet")
    warehouse = tmp_path / "wh.duckdb"
    shutil.copy(base_warehouse, warehouse)
    base = settings_for(tmp_path, source=BASE_SOURCE)
    assert materialize_selection(base, asset, tags=range_tags(str(START), str(END))).success
    before = _read_all(warehouse, [asset])[asset]
    assert before.height > 0
    # New bars under the features (committed normally): recomputing the features would now change them.
    changed = settings_for(tmp_path, source=SMALL_CHANGED_SOURCE)
    assert materialize_selection(changed, "group:bars", tags=range_tags(str(START), str(END))).success

    _kill_inside_write(tmp_path, warehouse, asset, SMALL_CHANGED_SOURCE, asset)

    assert _read_all(warehouse, [asset])[asset].equals(before)
    assert materialize_selection(changed, asset, tags=range_tags(str(START), str(END))).success
    assert not _read_all(warehouse, [asset])[asset].equals(before)


NEXT_RUN_TIMEOUT_S = 180
BLOCKED_GRACE_S = 10


@pytest.mark.slow
def test_next_run_on_the_instance_is_not_blocked_by_a_killed_run(base_warehouse: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    shutil.copy(base_warehouse, warehouse)
    home = _kill_inside_write(tmp_path, warehouse, "bars", BASE_SOURCE, "bars")
    log_path = tmp_path / "next_run.log"
    env = pipeline_env(warehouse, home, BASE_SOURCE)
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "materialize", "--select", "calendar"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + NEXT_RUN_TIMEOUT_S
        blocked_since = None
        while child.poll() is None and time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if blocked_since is None and "blocked by limit for pool" in text:
                blocked_since = time.monotonic()
            stuck = blocked_since is not None and "STEP_START" not in text
            if stuck and time.monotonic() - blocked_since > BLOCKED_GRACE_S:
                pytest.fail(f"the next run still waits for a pool slot after {BLOCKED_GRACE_S} s:\n{text[-2000:]}")
            time.sleep(0.5)
        assert child.poll() == 0, log_path.read_text(errors="replace")[-4000:]
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
