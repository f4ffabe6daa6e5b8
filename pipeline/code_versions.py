"""Asset code versions derived from the source: a hash of a module's text and of every project module it
imports, transitively (imports inside function bodies included, since the assets import their heavy work lazily).
An edit to any code an asset can run changes its version, so Dagster marks its materializations stale; a hand-set
``code_version="1"`` never changed.

The walk is static: the import statements are found by a line scan and parsed with ``ast`` (parsing whole files
cost ~70 ms for the project; the statements alone ~5 ms), and module names are resolved to files under the
repository root without importing anything. Type-checking-only imports count too: a harmless over-approximation.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The project's top-level packages; those absent from a checkout are skipped.
PROJECT_PACKAGES = ("assets", "pipeline", "warehouse", "features", "processing", "models", "evaluation", "workflow")

# An import statement at any indentation: `import a.b, c`, `from a import b`, `from . import (b,\n c)`.
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import[ \t]*(?:\([^)]*\)|[^\n]*)|import[ \t]+[^\n]*)", re.MULTILINE
)


class SourceGraph:
    """Module sources and static imports of the packages ``packages`` under ``root``, cached for the life of the
    object (the project's one lives as long as the process)."""

    def __init__(self, root: Path, packages: Iterable[str]) -> None:
        self.root = Path(root)
        self.packages = frozenset(p for p in packages if (self.root / p).is_dir())
        self._paths: dict[str, Path | None] = {}
        self._imports: dict[str, frozenset[str]] = {}
        self._versions: dict[str, str] = {}

    def path(self, module: str) -> Path | None:
        """The file of ``module`` (a module or a package's ``__init__``), None when it is not a project module."""
        if module not in self._paths:
            found = None
            if module.split(".")[0] in self.packages:
                base = self.root.joinpath(*module.split("."))
                for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                    if candidate.is_file():
                        found = candidate
                        break
            self._paths[module] = found
        return self._paths[module]

    def imports(self, module: str) -> frozenset[str]:
        """The project modules that importing or running ``module`` imports directly: each package on the way to
        an imported module too (their ``__init__`` runs first)."""
        if module not in self._imports:
            path = self.path(module)
            names: set[str] = set()
            if path is not None:
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for statement in _IMPORT.findall(path.read_text(encoding="utf-8")):
                    names.update(self._statement_targets(statement.strip(), package))
            self._imports[module] = frozenset(n for n in names if n != module and self.path(n) is not None)
        return self._imports[module]

    def _statement_targets(self, statement: str, package: str) -> set[str]:
        try:
            tree = ast.parse(statement)
        except SyntaxError:  # a docstring line that reads like an import
            return set()
        targets: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    targets.update(_with_parents(alias.name))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    anchor = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{anchor}.{base}" if base else anchor
                targets.update(_with_parents(base))
                # `from a import b`: b may be a submodule
                targets.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        return targets

    def closure(self, module: str) -> list[str]:
        """``module``, its packages and every project module they import, transitively, sorted."""
        seen = set(_with_parents(module))
        stack = list(seen)
        while stack:
            for name in self.imports(stack.pop()):
                if name not in seen:
                    seen.add(name)
                    stack.append(name)
        return sorted(n for n in seen if self.path(n) is not None)

    def version(self, module: str, *extra: str) -> str:
        """12 hex digits of a hash over the names and texts of ``module``'s closure and ``extra``."""
        key = "\0".join((module, *extra))
        if key not in self._versions:
            if self.path(module) is None:
                raise ValueError(f"{module!r} is not a module of {sorted(self.packages)} under {self.root}")
            digest = hashlib.sha256()
            for name in self.closure(module):
                digest.update(name.encode() + b"\0" + self.path(name).read_bytes() + b"\0")  # type: ignore[union-attr]
            for part in extra:
                digest.update(b"extra\0" + part.encode() + b"\0")
            self._versions[key] = digest.hexdigest()[:12]
        return self._versions[key]


def _with_parents(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))] if dotted else []


_PROJECT = SourceGraph(ROOT, PROJECT_PACKAGES)


def code_version(module: str, *extra: str) -> str:
    """The code version of an asset defined in ``module`` (pass ``__name__``), combined with ``extra`` strings
    that also define it (a feature set's own version)."""
    return _PROJECT.version(module, *extra)
