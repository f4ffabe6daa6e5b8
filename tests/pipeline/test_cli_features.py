"""`python -m pipeline features list|show`: the catalog as a user reads it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from features import qlib_sets
from pipeline.cli import build_parser
from pipeline.cli_features import run
from pipeline.settings import REPO_ROOT, Settings


def _run(argv: list[str], features: str | None = None) -> int:
    settings = Settings.from_env({"PIPELINE_FEATURES": features or ""})
    return run(build_parser().parse_args(["features", *argv]), settings)


def test_show_prints_qlib_text_in_order(capsys: pytest.CaptureFixture) -> None:
    assert _run(["show", "alpha158"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "KMID\t($close-$open)/$open"
    assert lines == [f"{n}\t{t}" for n, t in qlib_sets.alpha158_columns()]
    assert len(lines) == 158 and lines[-1].startswith("VSUMD60\t")
    assert _run(["show", "label"]) == 0
    assert capsys.readouterr().out == "LABEL0\tRef($close, -2)/Ref($close, -1) - 1\n"


def test_list_shows_sets_with_reach_and_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "sets.yaml"
    path.write_text("mine:\n  MOM20: Ref($close, 20)/$close - 1\n  HL: ($high-$low)/$close\n")
    assert _run(["list"], str(path)) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["set", "columns", "lookback", "horizon", "source"]
    assert rows[1:] == [
        ["alpha158", "158", "60", "0", "built-in"],
        ["alpha360", "360", "59", "0", "built-in"],
        ["label", "1", "0", "2", "built-in"],
        ["mine", "2", "20", "0", str(path.resolve())],
    ]
    assert _run(["show", "mine"], str(path)) == 0
    assert capsys.readouterr().out.splitlines() == ["MOM20\tRef($close, 20)/$close - 1", "HL\t($high-$low)/$close"]


def test_unknown_set_and_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit, match="unknown feature set 'nope'"):
        _run(["show", "nope"])
    path = tmp_path / "bad.yaml"
    path.write_text("alpha360:\n  A: $close\n")
    assert _run(["list"], str(path)) == 2
    err = capsys.readouterr().err
    assert str(path.resolve()) in err and "clashes with the built-in" in err


def test_through_python_m(tmp_path: Path) -> None:
    env = {**os.environ, "PIPELINE_FEATURES": ""}
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "features", "show", "alpha158"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "KMID\t($close-$open)/$open"
