"""Command-line hygiene: `group:features` is a pure date-range selection, no known library warning reaches the
terminal (the run's own log lines do), and every selection an error message suggests resolves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipeline.cli import backtest_scores, build_parser
from pipeline.settings import REPO_ROOT
from tests.helpers import SMALL_SOURCE, settings_for


def _cli(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PIPELINE_WAREHOUSE": str(tmp / "wh.duckdb"),
        "PIPELINE_SOURCE": SMALL_SOURCE,
        "DAGSTER_HOME": str(tmp / "dh"),
    }
    env.pop("PIPELINE_PROFILE", None)
    (tmp / "dh").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_group_features_over_a_range_through_the_cli_without_library_warnings(tmp_path: Path) -> None:
    span = ["--start", "2020-03-02", "--end", "2020-06-30"]
    bars = _cli(["materialize", "--select", "group:bars", *span], tmp_path)
    assert bars.returncode == 0, bars.stderr[-3000:]
    features = _cli(["materialize", "--select", "group:features", *span], tmp_path)
    assert features.returncode == 0, features.stderr[-3000:]
    for run in (bars, features):
        assert "BetaWarning" not in run.stderr
        assert "Warning" not in run.stderr  # nothing else of that kind either
        assert "training profile quick" in run.stdout
    # The run's own progress is in the terminal: the steps of the features run and their log lines.
    out = features.stdout + features.stderr
    assert "STEP_SUCCESS" in out and "features_alpha360" in out and "labels" in out
    assert "handler_alpha360_rnn" not in out  # the handlers are group `handlers`, not part of the range run


def test_handlers_have_their_own_group(tmp_path: Path) -> None:
    from pipeline.definitions import build_definitions

    graph = build_definitions(settings_for(tmp_path)).get_repository_def().asset_graph
    handlers = {k.to_user_string() for k in dg.AssetSelection.from_string("group:handlers").resolve(graph)}
    features = {k.to_user_string() for k in dg.AssetSelection.from_string("group:features").resolve(graph)}
    # Fitted on the train segment: the data handlers and HIST's concepts (derived there when the source has none).
    assert handlers == {"handler_alpha360_rnn", "handler_alpha158_20", "concepts"}
    assert features == {"features_alpha158", "features_alpha360", "labels"}
    assert all(graph.get(dg.AssetKey(k)).is_partitioned for k in features)


def _suggested_selections(message: str) -> list[str]:
    return re.findall(r"--select '([^']+)'", message)


def test_every_suggested_selection_resolves(tmp_path: Path) -> None:
    from models.config import model_config_names
    from pipeline.definitions import build_definitions

    settings = settings_for(tmp_path)
    graph = build_definitions(settings).get_repository_def().asset_graph
    args = build_parser().parse_args(["backtest", "--scores", str(tmp_path / "none.parquet")])
    with pytest.raises(SystemExit) as err:
        backtest_scores(args, settings)  # an empty warehouse: no bars, no labels
    suggested = _suggested_selections(str(err.value))
    assert suggested, str(err.value)
    # The workflow's "materialize <asset> first" messages name assets through workflow.names: every name it
    # gives for the configured handlers and models must be an asset key.
    from models.config import get_model_config
    from workflow.names import handler_asset, model_asset, predictions_asset

    handlers = {get_model_config(m).handler for m in model_config_names()}
    suggested += [f"key:{handler_asset(h)}" for h in handlers]
    suggested += [f"key:{f(m)}" for m in model_config_names() for f in (model_asset, predictions_asset)]
    for path in (REPO_ROOT / "assets" / "evaluation.py", REPO_ROOT / "pipeline" / "cli.py"):
        suggested += _suggested_selections(path.read_text())
    for selection in suggested:
        assert dg.AssetSelection.from_string(selection).resolve(graph), selection


def test_loading_the_definitions_does_not_import_torch_or_matplotlib(tmp_path: Path) -> None:
    """Bars and features runs never need torch (about 2 s to import) nor matplotlib (0.3 s): the training and
    scoring code is imported inside the model assets' bodies, matplotlib inside the plotting helpers."""
    code = (
        "import sys\n"
        "from pipeline.definitions import build_definitions\n"
        "from pipeline.settings import Settings\n"
        "build_definitions(Settings.from_env())\n"
        "import pipeline.cli\n"
        "print('torch' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    env = {**os.environ, "PIPELINE_WAREHOUSE": str(tmp_path / "wh.duckdb"), "PIPELINE_SOURCE": SMALL_SOURCE}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False False"
