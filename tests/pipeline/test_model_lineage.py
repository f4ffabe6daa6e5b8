"""Model-on-model lineage as the Dagster UI shows it: a graph model is fresh after its base, and retraining the
base into a new model version makes it stale (its data version is the trained weights' version)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from pipeline.definitions import build_definitions
from tests.helpers import materialize_selection, range_tags, settings_for

UPSTREAM = "key:calendar or key:universe or key:bars or key:features_alpha360 or key:labels or key:handler_alpha360_rnn"


def _status(instance: dg.DagsterInstance, defs: dg.Definitions, key: str) -> tuple[StaleStatus, list[str]]:
    resolver = get_stale_status_resolver(instance, list(defs.assets or []))
    asset_key = dg.AssetKey(key)
    causes = [
        cause.dependency.asset_key.to_user_string()
        for cause in resolver.get_stale_causes(asset_key)
        if cause.dependency
    ]
    return resolver.get_status(asset_key), causes


def test_retraining_the_base_makes_the_graph_model_stale(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, profile="smoke")
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    selection = f"{UPSTREAM} or key:model_lstm or key:model_gats"
    tags = range_tags("2020-01-02", "2020-12-31")
    assert materialize_selection(settings, selection, tags=tags, instance=instance).success
    assert _status(instance, defs, "model_gats")[0] == StaleStatus.FRESH

    # The same training again gives the same weights, so the same version: nothing downstream goes stale.
    assert materialize_selection(settings, "key:model_lstm", instance=instance).success
    assert _status(instance, defs, "model_gats")[0] == StaleStatus.FRESH

    # Another seed is another model version: GATs, trained from the old base, is now stale because of it.
    run_config = {"ops": {"model_lstm": {"config": {"seed": 1}}}}
    assert dg.materialize(
        assets=list(defs.assets or []),
        selection=dg.AssetSelection.assets("model_lstm"),
        resources=defs.resources,
        instance=instance,
        run_config=run_config,
    ).success
    status, causes = _status(instance, defs, "model_gats")
    assert status == StaleStatus.STALE and "model_lstm" in causes
