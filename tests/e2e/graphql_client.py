"""Drive a real Dagster webserver from tests and scripts (standard library only): start ``dagster dev`` on
a free loopback port in its own process group, wait until its code location has loaded, talk to its GraphQL
API (find the repository, launch an asset run, poll it, read its event log) and stop the whole process
group afterwards. Used by tests/e2e and scripts/screenshot_ui.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TERMINAL_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")

_WORKSPACE = """
{ workspaceOrError { __typename
    ... on PythonError { message }
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message stack } } } } } }
"""

_ASSET_NODES = "{ assetNodes { assetKey { path } isPartitioned groupName jobNames } }"

_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on PresetNotFoundError { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
  }
}
"""

_RUN = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status assetSelection { path } }
  ... on RunNotFoundError { message }
  ... on PythonError { message } } }
"""

_EVENTS = """
query Events($runId: ID!, $cursor: String) { logsForRun(runId: $runId, afterCursor: $cursor, limit: 1000) {
  __typename
  ... on EventConnection { cursor hasMore events { __typename
      ... on MessageEvent { message level stepKey }
      ... on MaterializationEvent { assetKey { path } partition }
      ... on AssetCheckEvaluationEvent { evaluation { checkName success severity assetKey { path } } }
      ... on ExecutionStepFailureEvent { error { message stack causes { message } } }
      ... on RunFailureEvent { error { message stack } }
      ... on EngineEvent { error { message stack } } } }
  ... on RunNotFoundError { message }
  ... on PythonError { message } } }
"""


class GraphQLError(RuntimeError):
    """The server answered with GraphQL errors or an unexpected result."""


class LocationLoadError(GraphQLError):
    """The code location failed to load (it will not get better by waiting)."""


@dataclass(frozen=True)
class RepositoryHandle:
    location: str
    name: str


class DagsterGraphQL:
    """Client for ``http://host:port/graphql``."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": document, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise GraphQLError(f"HTTP {exc.code} from {self.base_url}/graphql: {exc.read()[:2000]!r}") from exc
        if payload.get("errors"):
            raise GraphQLError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    # -- start-up ----------------------------------------------------------------------------------------
    def wait_until_ready(self, timeout_s: float, process: subprocess.Popen | None = None) -> RepositoryHandle:
        """Wait until the server answers and its (single) code location has loaded; return that repository.

        Fails at once when ``process`` (the server) exits, or when the code location fails to load (with
        the location's error), rather than waiting out the timeout."""
        deadline = time.monotonic() + timeout_s
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise GraphQLError(f"the server exited with code {process.returncode} before it was ready")
            try:
                self.query("{ version }")
                found = self._loaded_repository()
                if found is not None:
                    return found
                last_problem = "code location still loading"
            except LocationLoadError:
                raise
            except (OSError, GraphQLError) as exc:  # connection refused while starting, etc.
                last_problem = f"{type(exc).__name__}: {exc}"
            time.sleep(1.0)
        raise GraphQLError(f"server at {self.base_url} not ready after {timeout_s:.0f} s ({last_problem})")

    def _loaded_repository(self) -> RepositoryHandle | None:
        workspace = self.query(_WORKSPACE)["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            raise GraphQLError(f"workspace error: {workspace.get('message')}")
        entries = workspace["locationEntries"]
        if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
            return None
        repos = []
        for entry in entries:
            loc = entry["locationOrLoadError"]
            if loc is None:
                return None
            if loc["__typename"] == "PythonError":
                # A broken code location never becomes ready: report its error now.
                raise LocationLoadError(f"code location {entry['name']} failed to load: {loc['message']}")
            repos += [RepositoryHandle(loc["name"], r["name"]) for r in loc["repositories"]]
        if len(repos) != 1:
            raise GraphQLError(f"expected one repository in the workspace, found {repos}")
        return repos[0]

    # -- assets and runs ---------------------------------------------------------------------------------
    def asset_nodes(self) -> list[dict[str, Any]]:
        return self.query(_ASSET_NODES)["assetNodes"]

    def launch_asset_run(
        self,
        repository: RepositoryHandle,
        asset_keys: list[list[str]],
        tags: dict[str, str] | None = None,
        job_name: str = "__ASSET_JOB",
        run_config: dict[str, Any] | None = None,
    ) -> str:
        """Launch one run of ``job_name`` materializing ``asset_keys`` (and their checks); return its id."""
        params = {
            "selector": {
                "repositoryLocationName": repository.location,
                "repositoryName": repository.name,
                "jobName": job_name,
                "assetSelection": [{"path": list(k)} for k in asset_keys],
            },
            "runConfigData": run_config or {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        result = self.query(_LAUNCH, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"launchRun answered {result['__typename']}: {result}")
        return result["run"]["runId"]

    def run(self, run_id: str) -> dict[str, Any]:
        found = self.query(_RUN, {"runId": run_id})["runOrError"]
        if found["__typename"] != "Run":
            raise GraphQLError(f"run {run_id}: {found}")
        return found

    def wait_for_run(self, run_id: str, timeout_s: float, poll_s: float = 2.0) -> str:
        """Poll until the run reaches a terminal status; return it (raises on timeout, with the last status)."""
        deadline = time.monotonic() + timeout_s
        status = "unknown"
        while time.monotonic() < deadline:
            status = self.run(run_id)["status"]
            if status in TERMINAL_STATUSES:
                return status
            time.sleep(poll_s)
        raise GraphQLError(f"run {run_id} still {status} after {timeout_s:.0f} s")

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        """The run's whole event log, page by page."""
        events: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.query(_EVENTS, {"runId": run_id, "cursor": cursor})["logsForRun"]
            if page["__typename"] != "EventConnection":
                raise GraphQLError(f"logs of run {run_id}: {page}")
            events += page["events"]
            if not page["hasMore"] or page["cursor"] == cursor:
                return events
            cursor = page["cursor"]


def materialization_counts(events: list[dict[str, Any]]) -> Counter[str]:
    """How many materialization events each asset key (``a/b`` for multi-part keys) got."""
    return Counter("/".join(e["assetKey"]["path"]) for e in events if e["__typename"] == "MaterializationEvent")


def error_messages(events: list[dict[str, Any]]) -> list[str]:
    """Readable errors of a failed run: step failures, run failure, engine errors, ERROR-level messages."""
    out = []
    for e in events:
        err = e.get("error")
        if err:
            causes = "; ".join(c["message"].strip() for c in err.get("causes") or [])
            where = f"[{e.get('stepKey')}] " if e.get("stepKey") else ""
            cause = f" (caused by {causes})" if causes else ""
            out.append(f"{where}{e['__typename']}: {err['message'].strip()}{cause}")
        elif e.get("level") in ("ERROR", "CRITICAL"):
            out.append(f"[{e.get('stepKey')}] {e['__typename']}: {e.get('message', '').strip()}")
    return out


# -- the server process -----------------------------------------------------------------------------------
def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Ask the group led by ``process`` to stop (SIGINT, as Ctrl+C would), then SIGKILL whatever is left of
    it: ``dagster dev`` has children (webserver, daemon, code servers, run workers) in the same group."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def log_tail(path: Path, chars: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no server log)"


@contextmanager
def dagster_dev(
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    port: int | None = None,
    ready_timeout_s: float = 120.0,
    workspace: str = "workspace.yaml",
    with_daemon: bool = True,
) -> Iterator[tuple[DagsterGraphQL, RepositoryHandle]]:
    """Run ``dagster dev`` (webserver and daemon; the daemon dequeues launched runs) on 127.0.0.1 and yield
    a client and the loaded repository; the process group is always stopped on exit. Without the daemon,
    only the webserver runs (nothing gets launched: no queued run starts, no schedule or sensor ticks)."""
    port = port or free_port()
    if with_daemon:
        command = [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port), "-w", workspace]
    else:
        command = [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port), "-w", workspace]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            client = DagsterGraphQL(f"http://127.0.0.1:{port}")
            try:
                repository = client.wait_until_ready(ready_timeout_s, process)
            except GraphQLError as exc:
                raise GraphQLError(f"{exc}\n--- server log (tail) ---\n{log_tail(log_path)}") from exc
            yield client, repository
        finally:
            stop_process_group(process)


# -- configuration of child processes ------------------------------------------------------------------------
def smoke_profile() -> str | None:
    """``smoke`` when the pipeline defines that training profile (one epoch of a tiny network), else None."""
    try:
        from pipeline.profiles import PROFILES
    except ImportError:
        return None
    return "smoke" if "smoke" in PROFILES else None


def prepare_dagster_home(path: Path) -> Path:
    """Create a Dagster instance directory with the dagster.yaml the pipeline writes for its own instance."""
    from pipeline.instance import ensure_dagster_home

    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(path)
    try:
        return ensure_dagster_home()
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before


def pipeline_env(warehouse: Path, dagster_home: Path, source: str, **extra: str) -> dict[str, str]:
    """This process's environment without any PIPELINE_* setting or DAGSTER_HOME of the caller, configured for
    one warehouse, one instance and one source, on the CPU, with the smoke profile when there is one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_") and k != "DAGSTER_HOME"}
    env.update(
        PIPELINE_WAREHOUSE=str(warehouse),
        PIPELINE_SOURCE=source,
        PIPELINE_DEVICE="cpu",
        DAGSTER_HOME=str(dagster_home),
    )
    # As the Makefile exports them: one planned event per asset, not per partition, for a range run, and the
    # per-partition materializations written in batches (pipeline/event_log.py).
    from pipeline.instance import EVENT_BATCH_SIZE

    env.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    env.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
    profile = smoke_profile()
    if profile:
        env["PIPELINE_PROFILE"] = profile
    env.update(extra)
    return env
