"""Asset code versions come from the source of the asset's module and everything it imports, transitively."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from features import catalog
from pipeline.code_versions import PROJECT_PACKAGES, ROOT, SourceGraph, code_version
from tests.helpers import settings_for

MODULES = {
    "__init__.py": "",
    "a.py": "import os\n\nfrom pkg import b\n",
    # imported inside a function body, and relatively: both count
    "b.py": "def run():\n    from pkg.c import value\n\n    return value\n",
    "c.py": "from . import (\n    e,\n)\n\nvalue = 1\n",
    "d.py": "value = 2\n",
    "e.py": '"""Not code:\nimport what you need, or not\n"""\n',  # a docstring line that reads like an import
}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    for name, text in MODULES.items():
        (tmp_path / "pkg" / name).write_text(text)
    return tmp_path


def test_closure_follows_function_body_and_relative_imports(package: Path) -> None:
    graph = SourceGraph(package, ["pkg", "absent"])
    assert graph.packages == {"pkg"}
    assert graph.closure("pkg.a") == ["pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.e"]
    assert graph.closure("pkg.d") == ["pkg", "pkg.d"]


def test_version_changes_with_a_transitively_imported_module_only(package: Path) -> None:
    first = SourceGraph(package, ["pkg"])
    before = first.version("pkg.a")
    assert SourceGraph(package, ["pkg"]).version("pkg.a") == before  # stable across loads
    assert first.version("pkg.a", "x") != before != first.version("pkg.d")

    (package / "pkg" / "d.py").write_text("value = 3\n")  # not imported by pkg.a
    assert SourceGraph(package, ["pkg"]).version("pkg.a") == before
    (package / "pkg" / "e.py").write_text("value = 4\n")  # three imports away, one of them in a function body
    after = SourceGraph(package, ["pkg"]).version("pkg.a")
    assert after != before
    assert first.version("pkg.a") == before  # cached for the life of the graph (the process)


def test_unknown_module_is_named(package: Path) -> None:
    with pytest.raises(ValueError, match=r"'pkg\.nope' is not a module of \['pkg'\]"):
        SourceGraph(package, ["pkg"]).version("pkg.nope")


def _versions(tmp_path: Path) -> dict[str, str | None]:
    from pipeline.definitions import build_definitions

    graph = build_definitions(settings_for(tmp_path)).get_repository_def().asset_graph
    return {key.to_user_string(): graph.get(key).code_version for key in graph.get_all_asset_keys()}


def test_definitions_carry_derived_versions_stable_across_loads(tmp_path: Path) -> None:
    versions = _versions(tmp_path)
    assert _versions(tmp_path) == versions
    assert versions["calendar"] == versions["bars"] == code_version("assets.bars")
    assert versions["model_lstm"] == versions["predictions_lstm"] == code_version("assets.models")
    assert versions["backtest_lstm"] == code_version("assets.evaluation")
    modules = [code_version(f"assets.{m}") for m in ("bars", "features", "models", "evaluation", "benchmark")]
    assert len(set(modules)) == len(modules)
    for name in ("alpha158", "label"):
        spec = catalog.get(name)
        assert versions[spec.table] == code_version("assets.features", spec.code_version)
    # a feature set's own version (a digest of a user's expressions) enters its asset's version
    assert code_version("assets.features", "1") != code_version("assets.features", "0123abcd")


def test_model_assets_depend_on_the_training_code_they_import_lazily() -> None:
    graph = SourceGraph(ROOT, PROJECT_PACKAGES)
    assert {"models.training", "models.networks", "processing.handler"} <= set(graph.closure("assets.models"))
    assert "models.training" not in graph.closure("assets.bars")


def test_deriving_every_asset_module_is_cheap() -> None:
    start = time.perf_counter()
    graph = SourceGraph(ROOT, PROJECT_PACKAGES)  # fresh: nothing cached
    for module in ("bars", "features", "models", "evaluation", "benchmark"):
        graph.version(f"assets.{module}")
    assert time.perf_counter() - start < 0.25  # ~10 ms measured; it runs at every definitions load
