"""The layering rules of docs/architecture.md, checked on the source: domain packages stand alone, modules stay
small, and no module reaches into another's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = ("warehouse", "features", "processing", "models", "evaluation", "workflow")
PRODUCT = (*DOMAIN, "pipeline", "assets")
WIRING = ("pipeline", "assets", "dagster", "dagster_webserver", "dagster_graphql")
MAX_LINES = 450


def _modules(packages: tuple[str, ...]) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import statement, function bodies included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, [a.name for a in node.names], node.lineno))
    return out


@pytest.mark.parametrize("path", _modules(DOMAIN), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_modules_do_not_import_the_dagster_wiring(path: Path) -> None:
    bad = [(m, line) for m, _, line in _imports(path) if m.split(".")[0] in WIRING]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_product_modules_stay_under_the_size_limit() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in _modules(PRODUCT)}
    long = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_module_imports_another_modules_private_names() -> None:
    private = []
    for path in _modules(PRODUCT):
        for module, names, line in _imports(path):
            if module.split(".")[0] in PRODUCT:
                private += [f"{path.relative_to(ROOT)}:{line} {module}.{n}" for n in names if n.startswith("_")]
    assert not private, private


def test_the_rules_see_the_tree() -> None:
    # The checks above would pass vacuously on a wrong ROOT or package list.
    assert len(_modules(DOMAIN)) > 50 and (ROOT / "workflow" / "training.py").is_file()
    assert any(m == "dagster" for m, _, _ in _imports(ROOT / "pipeline" / "definitions.py"))
