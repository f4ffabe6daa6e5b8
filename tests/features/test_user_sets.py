"""PIPELINE_FEATURES files: good files become catalog sets with derived reach; bad files fail naming the file,
set, column and reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from features import catalog
from features.user_sets import FeatureFileError, load_user_sets

GOOD = """\
mine:
  MOM20: Ref($close, 20)/$close - 1
  VOLR5: Mean($volume, 5)/($volume+1e-12)
  HL: ($high-$low)/$close
ahead:
  FWD1: Ref($close, -1)/$close - 1
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sets.yaml"
    path.write_text(text)
    return path


def test_good_file_becomes_catalog_sets(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    sets = catalog.load_catalog(str(path))
    assert list(sets) == ["alpha158", "alpha360", "label", "mine", "ahead"]
    mine = sets["mine"]
    assert mine.table == "features_mine" and mine.source == str(path.resolve())
    assert mine.columns == (
        ("MOM20", "Ref($close, 20)/$close - 1"),
        ("VOLR5", "Mean($volume, 5)/($volume+1e-12)"),
        ("HL", "($high-$low)/$close"),
    )
    assert (mine.lookback, mine.horizon) == (20, 0)
    assert mine.fields == ("close", "high", "low", "volume")
    assert mine.reaches["VOLR5"] == (4, 0)
    assert (sets["ahead"].lookback, sets["ahead"].horizon) == (0, 1)
    assert mine.role == catalog.FEATURE and mine.code_version != sets["ahead"].code_version


def test_builtin_reach_derived_from_expressions() -> None:
    sets = catalog.load_catalog(None)
    assert (sets["alpha158"].lookback, sets["alpha158"].horizon) == (60, 0)
    assert (sets["alpha360"].lookback, sets["alpha360"].horizon) == (59, 0)
    assert (sets["label"].lookback, sets["label"].horizon) == (0, 2)
    assert sets["alpha158"].fields == ("close", "high", "low", "open", "volume", "vwap")
    assert sets["label"].fields == ("close",)


def test_code_version_follows_the_expressions(tmp_path: Path) -> None:
    before = catalog.load_catalog(str(_write(tmp_path, GOOD)))["mine"].code_version
    after = catalog.load_catalog(str(_write(tmp_path, GOOD.replace("Ref($close, 20)", "Ref($close, 10)"))))
    assert after["mine"].code_version != before
    assert catalog.load_catalog(None)["alpha158"].code_version == "1"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("mine: [unclosed\n", ["not valid YAML"]),
        ("- a\n- b\n", ["expected a mapping of feature set name"]),
        ("", ["an empty file"]),
        ("Mine:\n  A: $close\n", ["'Mine'", "not valid"]),
        ("my-set:\n  A: $close\n", ["'my-set'", "not valid"]),
        ("alpha158:\n  A: $close\n", ["'alpha158'", "clashes with the built-in"]),
        ("label:\n  A: $close\n", ["'label'", "clashes with the built-in"]),
        ("mine: $close\n", ["feature set 'mine'", "non-empty mapping"]),
        ("mine: {}\n", ["feature set 'mine'", "non-empty mapping"]),
        ("mine:\n  1X: $close\n", ["feature set 'mine'", "column '1X'", "not a valid column name"]),
        ("mine:\n  date: $close\n", ["column 'date'", "reserved"]),
        ("mine:\n  Ab: $close\n  AB: $open\n", ["column 'AB'", "clashes with column 'Ab'"]),
        ("mine:\n  A: $close\n  A: $open\n", ["'A' is given twice", "line 3"]),
        ("mine:\n  A: [1, 2]\n", ["column 'A'", "must be a string"]),
        ("mine:\n  A: Mean($close, 5) + Foo($open)\n", ["feature set 'mine'", "column 'A'", "Foo"]),
        ("mine:\n  OK: $close\n  BAD: Mean($close, 5\n", ["feature set 'mine'", "column 'BAD'"]),
    ],
)
def test_bad_files_name_file_set_column_and_reason(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(FeatureFileError) as info:
        catalog.load_catalog(str(path))
    message = str(info.value)
    assert str(path.resolve()) in message
    for needle in needles:
        assert needle in message, message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        FeatureFileError, match=re.escape(f"PIPELINE_FEATURES file {tmp_path / 'nope.yaml'}: cannot be read")
    ):
        load_user_sets(tmp_path / "nope.yaml", reserved={})


def test_activate_switches_the_views(tmp_path: Path) -> None:
    from features import FEATURE_SETS
    from processing.config import FEATURE_SETS as HANDLER_SETS
    from processing.config import HandlerConfig
    from warehouse.feature_store import FEATURE_TABLES

    try:
        catalog.activate(str(_write(tmp_path, GOOD)))
        assert FEATURE_TABLES["mine"] == "features_mine" and "mine" in FEATURE_SETS
        assert list(HANDLER_SETS) == ["alpha158", "alpha360", "mine", "ahead"]
        assert HandlerConfig(name="mine_h", feature_set="mine").feature_set == "mine"
        catalog.activate(None)
        assert "mine" not in FEATURE_TABLES
        with pytest.raises(ValueError, match=r"feature_set='mine' is not one of \['alpha158', 'alpha360'\]"):
            HandlerConfig(name="mine_h", feature_set="mine")
    finally:
        catalog.activate(None)
