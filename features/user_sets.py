"""Users' own feature sets from a YAML file (``PIPELINE_FEATURES=<file.yaml>``).

The file is a mapping ``set name -> {column: expression}``, in Qlib's expression language::

    mine:
      MOM20: Ref($close, 20)/$close - 1
      VOLR5: Mean($volume, 5)/($volume+1e-12)
      RCORR10: CSRank(Corr($close, $volume, 10))

Each set becomes the daily-partitioned asset and table ``features_<set>``, column order as written. Every
problem is found when the file is loaded (the code location fails to load, nothing is written): a YAML error,
a file that is not such a mapping, a set or column name that is not an identifier (set names: lower case,
digits, underscores; they become table names), two columns whose names differ only in case (DuckDB's
identifiers are case-insensitive), ``instrument`` / ``date`` as a column, a set without columns, a set named
like a built-in one, or an expression the engine rejects. The message names the file, the set, the column and
the reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from features.catalog import FeatureSetSpec

SET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,55}$")
COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
KEY_COLUMNS = ("instrument", "date")


class FeatureFileError(ValueError):
    """A bad ``PIPELINE_FEATURES`` file; the message names the file, set, column and reason."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML would keep the last silently)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise FeatureFileError(f"key {key!r} is given twice in one mapping (line {line})")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FeatureFileError(f"PIPELINE_FEATURES file {path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except FeatureFileError as exc:
        raise FeatureFileError(f"PIPELINE_FEATURES file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise FeatureFileError(f"PIPELINE_FEATURES file {path}: not valid YAML: {exc}") from None


def _set_spec(path: Path, name: Any, body: Any, reserved: Mapping[str, FeatureSetSpec]) -> FeatureSetSpec:
    where = f"PIPELINE_FEATURES file {path}"
    if not isinstance(name, str) or not SET_NAME.match(name):
        raise FeatureFileError(
            f"{where}: feature set name {name!r} is not valid: lower-case letters, digits and underscores, "
            "starting with a letter (it becomes the table and asset name features_<set>)"
        )
    where += f", feature set {name!r}"
    if name in reserved:
        raise FeatureFileError(f"{where}: the name clashes with the built-in set {name!r}; pick another name")
    if not isinstance(body, Mapping) or not body:
        raise FeatureFileError(f"{where}: expected a non-empty mapping of column name -> expression, got {body!r}")
    columns: list[tuple[str, str]] = []
    folded: dict[str, str] = {}
    for column, text in body.items():
        if not isinstance(column, str) or not COLUMN_NAME.match(column):
            raise FeatureFileError(
                f"{where}, column {column!r}: not a valid column name (letters, digits, underscores, not starting "
                "with a digit)"
            )
        if column.lower() in KEY_COLUMNS:
            raise FeatureFileError(f"{where}, column {column!r}: the name is reserved for the table's key")
        if column.lower() in folded:
            raise FeatureFileError(
                f"{where}, column {column!r}: clashes with column {folded[column.lower()]!r} (column names are "
                "case-insensitive in the warehouse)"
            )
        folded[column.lower()] = column
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            raise FeatureFileError(f"{where}, column {column!r}: the expression must be a string, got {text!r}")
        columns.append((column, str(text).strip()))
    digest = hashlib.sha256(repr(columns).encode()).hexdigest()[:12]
    spec = FeatureSetSpec(
        name=name,
        columns=tuple(columns),
        table=f"features_{name}",
        description=f"User feature set `{name}` from {path}: {len(columns)} columns "
        f"({', '.join(c for c, _ in columns[:6])}{', ...' if len(columns) > 6 else ''}), table "
        f"`features_{name}(instrument, date, ...)`, float32.",
        source=str(path),
        code_version=digest,  # a changed expression makes the asset's materializations stale
    )
    _validate_expressions(where, spec)
    return spec


def _validate_expressions(where: str, spec: FeatureSetSpec) -> None:
    """Parse every expression and derive reach and fields now, so a bad one fails the load."""
    from features.expressions import ExpressionError

    try:
        spec.nodes  # noqa: B018 - parses, caches
        spec.reaches  # noqa: B018
        spec.column_fields  # noqa: B018
    except ExpressionError as exc:
        raise FeatureFileError(f"PIPELINE_FEATURES file {spec.source}: {exc}") from None
    except (ValueError, TypeError) as exc:  # anything else the engine refuses still names where
        raise FeatureFileError(f"{where}: {exc}") from None


def load_user_sets(path: str | Path, reserved: Mapping[str, FeatureSetSpec]) -> list[FeatureSetSpec]:
    """The sets of the YAML file at ``path``, validated; ``reserved`` are the names already taken."""
    path = Path(path).expanduser().resolve()
    data = _read(path)
    if not isinstance(data, Mapping) or not data:
        raise FeatureFileError(
            f"PIPELINE_FEATURES file {path}: expected a mapping of feature set name -> {{column: expression}}, "
            f"got {type(data).__name__ if data is not None else 'an empty file'}"
        )
    return [_set_spec(path, name, body, reserved) for name, body in data.items()]
