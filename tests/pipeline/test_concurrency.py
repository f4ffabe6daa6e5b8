"""Two headless materializations at once, in two OS processes, against one warehouse file and one Dagster
instance, while a third process holds the DuckDB write lock: neither may corrupt the warehouse or fail with
an obscure error. Each either waits for the lock and succeeds, or fails naming WarehouseBusy; the warehouse
ends up exactly as one clean run into a fresh file leaves it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from pipeline.settings import REPO_ROOT
from tests.e2e.graphql_client import pipeline_env, prepare_dagster_home
from tests.helpers import materialize_selection, range_tags, settings_for
from warehouse.sources import open_source
from warehouse.store import Warehouse

SOURCE = "synthetic:seed=3,instruments=40,start=2020-01-01,end=2020-04-30,core_size=10"
SELECT = "group:bars"
TABLES = {"calendar": "date", "instruments": "universe, instrument, start_date", "bars": "instrument, date"}
WAIT_FOR_STEP_S = 180
PROCESS_TIMEOUT_S = 300

# Holds a write connection on the warehouse until a line arrives on stdin (or stdin closes).
LOCK_HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
con.close()
"""


def _snapshot(path: Path) -> dict[str, object]:
    wh = Warehouse(path)
    return {t: wh.query(f"select * from {t} order by {order}") for t, order in TABLES.items()}


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _exception_line(stderr: str) -> str:
    """The line naming the exception in a traceback (SQLAlchemy adds lines after it)."""
    lines = [ln for ln in stderr.splitlines() if ln and not ln[0].isspace() and ("Error" in ln or "Exception" in ln)]
    return lines[-1][:300] if lines else stderr.strip()[-300:]


def _waiting(log: Path) -> bool:
    text = log.read_text()
    return 'STEP_START - Started execution of step "calendar"' in text or "blocked by limit for pool" in text


def _wait_for(predicate, timeout_s: float, what: str, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        if any(p.poll() is not None for p in processes):
            return  # a process ended early; its outcome is checked below
        time.sleep(0.2)


@pytest.mark.slow
def test_two_processes_materialize_at_once_while_the_warehouse_is_locked(tmp_path: Path) -> None:
    home = prepare_dagster_home(tmp_path / "dagster_home")
    # The instance already exists, as after any first run (creating a fresh one from two processes at once is
    # the separate test below).
    DagsterInstance.from_ref(InstanceRef.from_dir(str(home))).dispose()
    shared = tmp_path / "shared" / "wh.duckdb"
    shared.parent.mkdir()
    env = pipeline_env(shared, home, SOURCE)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(shared)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    runners: list[subprocess.Popen] = []
    logs = [tmp_path / f"runner{i}.log" for i in range(2)]
    try:
        assert holder.stdout.readline().strip() == "locked"
        for log in logs:
            with open(log, "wb") as out:
                runners.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "pipeline", "materialize", "--select", SELECT],
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        # Release the lock only once both runs are waiting: inside their first warehouse step (retrying the
        # DuckDB lock), or queued behind the other run's step by the instance's 'warehouse' pool.
        _wait_for(lambda: all(_waiting(log) for log in logs), WAIT_FOR_STEP_S, "both runs to start", runners)
        time.sleep(1.0)
        released_at = time.time()
        holder.communicate("release\n", timeout=30)
        outcomes = []
        for runner, log in zip(runners, logs, strict=True):
            try:
                runner.wait(timeout=PROCESS_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"runner still going after {PROCESS_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")
            outcomes.append((runner.returncode, log.read_text()))
    finally:
        for p in [holder, *runners]:
            _stop(p)

    for code, text in outcomes:
        # The only acceptable failure is the warehouse's own, named one.
        assert code == 0 or ("WarehouseBusy" in text and "is locked by" in text), text[-4000:]
    assert any(code == 0 for code, _ in outcomes), "neither run succeeded"

    # The shared instance recorded both runs; each succeeded one waited for the lock, then finished.
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2
        succeeded = [r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS]
        assert len(succeeded) == sum(code == 0 for code, _ in outcomes)
        for run in succeeded:
            calendar_step = instance.get_run_step_stats(run.run_id, step_keys=["calendar"])[0]
            assert calendar_step.end_time >= released_at

    # Same content as one clean run into its own warehouse.
    clean = settings_for(tmp_path / "clean", source=SOURCE)
    calendar = open_source(SOURCE, "fail").calendar()
    assert materialize_selection(
        clean, SELECT, tags=range_tags(calendar[0].isoformat(), calendar[-1].isoformat())
    ).success
    expected, got = _snapshot(Path(clean.warehouse)), _snapshot(shared)
    for table in TABLES:
        assert got[table].equals(expected[table]), table
    assert got["bars"].height > 0


# Waits for a start signal (a file appearing), then opens the pipeline's persistent instance and reads it.
FIRST_USE = """
import os, sys, time
from pipeline.instance import persistent_instance
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.005)
instance = persistent_instance()
print(len(instance.get_runs()), flush=True)
"""


def test_fresh_instance_first_used_by_several_processes_at_once(tmp_path: Path) -> None:
    home = tmp_path / "fresh_home"  # does not exist yet: the first `make run` on a new checkout
    go = tmp_path / "go"
    env = pipeline_env(tmp_path / "wh.duckdb", home, SOURCE)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_USE, str(go)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for _ in range(4)
    ]
    try:
        for c in children:  # every child has imported Dagster and waits: then they all start at once
            assert c.stdout.readline().strip() == "ready"
        go.touch()
        results = [c.communicate(timeout=PROCESS_TIMEOUT_S) for c in children]
    finally:
        for c in children:
            _stop(c)
    failures = [_exception_line(err) for (_, err), c in zip(results, children, strict=True) if c.returncode]
    assert failures == []
    assert [out.strip() for out, _ in results] == ["0"] * 4
