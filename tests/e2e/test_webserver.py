"""End to end through the UI's own API: `dagster dev` (webserver and daemon) on a loopback port, a run of the
whole asset graph launched over GraphQL as the launchpad would, then the warehouse and the run's event log
checked. Needs no network beyond 127.0.0.1."""

from __future__ import annotations

import dagster as dg
import pytest

from pipeline.definitions import build_definitions
from pipeline.settings import REPO_ROOT, Settings
from tests.e2e.conftest import E2EPaths
from tests.e2e.graphql_client import (
    GraphQLError,
    dagster_dev,
    error_messages,
    log_tail,
    materialization_counts,
)
from warehouse.sources import open_source
from warehouse.store import Warehouse

# What the test materializes, in Dagster's selection syntax: the whole graph, whatever it grows to.
E2E_SELECTION = "* and not group:benchmark"
# All steps in the run worker's process. The launchpad's default (multiprocess: one process per step, each
# importing torch) costs ~5-10 s per step on two cores, minutes for the whole graph; set {} to test it.
E2E_RUN_CONFIG = {"execution": {"config": {"in_process": {}}}}
READY_TIMEOUT_S = 120
RUN_TIMEOUT_S = 480

pytestmark = pytest.mark.slow


def test_whole_graph_materializes_through_the_webserver(e2e: E2EPaths) -> None:
    settings = Settings.from_env(e2e.env)
    graph = build_definitions(settings).resolve_asset_graph()
    selection = dg.AssetSelection.from_string(E2E_SELECTION)
    wanted = sorted(k.to_user_string() for k in selection.resolve(graph))
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    wanted_checks = {c for c in checks if c[0] in wanted}
    assert {"calendar", "universe", "bars"} <= set(wanted)
    calendar = open_source(settings.source, settings.on_bad_file).calendar()
    first, last = calendar[0], calendar[-1]
    bars_partitions = graph.get(dg.AssetKey("bars")).partitions_def
    n_partitions = len(
        bars_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first.isoformat(), last.isoformat()))
    )

    with dagster_dev(REPO_ROOT, e2e.env, e2e.server_log, ready_timeout_s=READY_TIMEOUT_S) as (client, repo):
        nodes = {"/".join(n["assetKey"]["path"]): n for n in client.asset_nodes()}
        assert set(wanted) <= set(nodes), f"the server's graph lacks {sorted(set(wanted) - set(nodes))}"
        tags = {}
        if any(nodes[k]["isPartitioned"] for k in wanted):
            # One run over the whole range, as a backfill with a single-run policy would launch it.
            tags = {
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            }
        run_id = client.launch_asset_run(
            repo, [nodes[k]["assetKey"]["path"] for k in wanted], tags, run_config=E2E_RUN_CONFIG
        )
        try:
            status = client.wait_for_run(run_id, RUN_TIMEOUT_S)
        except GraphQLError as exc:
            pytest.fail(f"{exc}\n--- server log (tail) ---\n{log_tail(e2e.server_log)}")
        events = client.run_events(run_id)
        if status != "SUCCESS":
            errors = "\n".join(error_messages(events)[:40]) or "(no error events)"
            server = log_tail(e2e.server_log)
            pytest.fail(f"run {run_id} ended {status}:\n{errors}\n--- server log (tail) ---\n{server}")

        run = client.run(run_id)
        assert sorted("/".join(k["path"]) for k in run["assetSelection"]) == wanted

        counts = materialization_counts(events)
        assert [k for k in wanted if counts[k] == 0] == [], f"not materialized; got {dict(counts)}"
        # The run records every partition of the range (partitions without a trading day write nothing).
        assert counts["bars"] == n_partitions
        assert counts["calendar"] == counts["universe"] == 1

        evaluations = [e["evaluation"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"]
        evaluated = {("/".join(e["assetKey"]["path"]), e["checkName"]) for e in evaluations}
        assert evaluated == wanted_checks
        failed = [e["checkName"] for e in evaluations if e["severity"] == "ERROR" and not e["success"]]
        assert failed == []

    # The warehouse holds the whole range, exactly what the source has (read-only, after the run).
    wh = Warehouse(e2e.warehouse)
    source = open_source(settings.source, settings.on_bad_file)
    source_bars = source.read_bars(None).bars
    stored = wh.query("select count(*) as n, min(date) as lo, max(date) as hi, count(distinct date) as days from bars")
    row = stored.row(0, named=True)
    assert row["n"] == source_bars.height
    assert (row["lo"], row["hi"], row["days"]) == (first, last, len(calendar))
    assert wh.query("select date from calendar order by date")["date"].to_list() == calendar
    members = set(wh.query("select distinct instrument from instruments")["instrument"].to_list())
    benchmark = settings.benchmark or source.default_benchmark()
    assert set(wh.query("select distinct instrument from bars")["instrument"].to_list()) == members | {benchmark}
