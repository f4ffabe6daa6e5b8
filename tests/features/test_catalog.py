"""The catalog's built-in sets are Qlib's loaders' output, text for text; the names users see stay as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from features import ALPHA158_COLUMNS, ALPHA360_COLUMNS, LABEL_COLUMNS, qlib_sets

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "features" / "qlib_loader_configs.json"


@pytest.fixture(scope="module")
def qlib_generated() -> dict:
    return json.loads(FIXTURE.read_text())


def _pairs(columns) -> list[list[str]]:
    return [[name, text] for name, text in columns]


def test_builtins_equal_qlib_loaders(qlib_generated) -> None:
    assert _pairs(qlib_sets.alpha158_columns()) == qlib_generated["alpha158"]["loader_default"]["columns"]
    assert _pairs(qlib_sets.alpha360_columns()) == qlib_generated["alpha360"]
    assert _pairs(qlib_sets.LABEL_COLUMNS) == qlib_generated["label"]


@pytest.mark.parametrize(
    "key",
    [
        "handler_config",
        "kbar_only",
        "price_defaults",
        "volume_windows",
        "rolling_windows",
        "rolling_include",
        "rolling_exclude",
        "everything",
    ],
)
def test_alpha158_knobs_equal_qlib(qlib_generated, key: str) -> None:
    case = qlib_generated["alpha158"][key]
    assert _pairs(qlib_sets.alpha158_columns(case["config"])) == case["columns"]


def test_min_group_is_gated_by_low_as_in_qlib() -> None:
    only_min = [c for c, _ in qlib_sets.alpha158_columns({"rolling": {"windows": [5], "include": ["MIN"]}})]
    only_low = [c for c, _ in qlib_sets.alpha158_columns({"rolling": {"windows": [5], "include": ["LOW"]}})]
    assert only_min == [] and only_low == ["MIN5"]


def test_bad_alpha158_config() -> None:
    with pytest.raises(ValueError, match=r"Alpha158 config: unknown groups \['kbars'\]"):
        qlib_sets.alpha158_columns({"kbars": {}})
    with pytest.raises(ValueError, match="rolling windows must be integers, got 5.5"):
        qlib_sets.alpha158_columns({"rolling": {"windows": [5.5]}})


def _legacy_alpha158() -> list[str]:
    # The column order the pipeline stored before the catalog (features/alpha158.py's construction).
    kbar = ["KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT", "KSFT2"]
    groups = [
        "ROC", "MA", "STD", "BETA", "RSQR", "RESI", "MAX", "MIN", "QTLU", "QTLD", "RANK", "RSV", "IMAX", "IMIN",
        "IMXD", "CORR", "CORD", "CNTP", "CNTN", "CNTD", "SUMP", "SUMN", "SUMD", "VMA", "VSTD", "WVMA", "VSUMP",
        "VSUMN", "VSUMD",
    ]  # fmt: skip
    return kbar + ["OPEN0", "HIGH0", "LOW0", "VWAP0"] + [f"{g}{w}" for g in groups for w in (5, 10, 20, 30, 60)]


def test_column_names_and_order_unchanged() -> None:
    assert _legacy_alpha158() == ALPHA158_COLUMNS
    blocks = ("CLOSE", "OPEN", "HIGH", "LOW", "VWAP", "VOLUME")
    assert [f"{p}{i}" for p in blocks for i in range(59, -1, -1)] == ALPHA360_COLUMNS
    assert LABEL_COLUMNS == ["LABEL0"]


def test_catalog_records_keep_tables() -> None:
    from features import catalog

    sets = catalog.load_catalog(None)
    assert list(sets) == ["alpha158", "alpha360", "label"]
    assert [s.table for s in sets.values()] == ["features_alpha158", "features_alpha360", "labels"]
    assert {s.source for s in sets.values()} == {catalog.BUILTIN}
    assert sets["label"].role == catalog.LABEL and sets["alpha158"].role == catalog.FEATURE
