"""The feature-set catalog: every feature set the pipeline computes, one record each.

A record is a name, its ordered (column, expression) pairs in Qlib's expression language, the warehouse table,
a description and where it came from (``built-in`` or the YAML file of ``PIPELINE_FEATURES``). Everything else
is derived from the expressions with the engine's ``parse`` / ``reach`` / ``fields``: the lookback and horizon
(so the Dagster partition mapping and the history a window run reads), the bar fields a window reads. The
assets, the tables, the handlers' accepted sets, the jobs and the CLI read this catalog, so adding a set is
one entry here (built-in) or one YAML file (``features.user_sets``).

The catalog in force is the one the code location loaded: ``activate(path)`` (called by
``pipeline.definitions.build_definitions`` with ``Settings.features``, the parsed ``PIPELINE_FEATURES``) builds
it; before any activation, ``active()`` is the built-in sets alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, TypeVar

from features import qlib_sets

BUILTIN = "built-in"
FEATURE, LABEL = "feature", "label"
T = TypeVar("T")


@dataclass(frozen=True)
class FeatureSetSpec:
    """One feature set. ``role`` is ``label`` for the label set (its table feeds every handler's label)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    table: str
    description: str
    source: str = BUILTIN
    role: str = FEATURE
    code_version: str = "1"

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def expression(self, column: str) -> str:
        return dict(self.columns)[column]

    @cached_property
    def nodes(self) -> tuple[Any, ...]:
        """The parsed expressions, in column order (raises ExpressionError naming set, column and position)."""
        from features.expressions import parse

        return tuple(parse(text, set_name=self.name, column=col) for col, text in self.columns)

    @cached_property
    def reaches(self) -> dict[str, tuple[int, int]]:
        """Per column: (lookback, horizon) in trading days, from the engine's ``reach``."""
        from features.expressions import reach

        return {col: reach(node) for (col, _), node in zip(self.columns, self.nodes, strict=True)}

    @cached_property
    def column_fields(self) -> dict[str, frozenset[str]]:
        """Per column: the bar fields (without ``$``) its expression reads."""
        from features.expressions import fields

        return {col: frozenset(fields(node)) for (col, _), node in zip(self.columns, self.nodes, strict=True)}

    @property
    def lookback(self) -> int:
        """Trading days of bars needed before a window's first day (``unbounded()`` means all history)."""
        return max((lb for lb, _ in self.reaches.values()), default=0)

    @property
    def horizon(self) -> int:
        """Trading days of bars after a window's last day that its values read (the label: 2)."""
        return max((h for _, h in self.reaches.values()), default=0)

    @property
    def fields(self) -> tuple[str, ...]:
        """Every bar field the set reads, sorted."""
        return tuple(sorted(set().union(*self.column_fields.values())))

    @cached_property
    def cross_sectional(self) -> bool:
        """Whether an expression uses a cross-sectional operator (per day over the universe's members)."""
        from features.expressions import cross_sectional

        return any(cross_sectional(node) for node in self.nodes)

    @property
    def unbounded(self) -> bool:
        return self.lookback >= unbounded()


def unbounded() -> int:
    """The engine's lookback for expressions that read all history (expanding windows)."""
    from features import expressions

    return int(expressions.UNBOUNDED)


def _builtins() -> list[FeatureSetSpec]:
    return [
        FeatureSetSpec(
            "alpha158",
            tuple(qlib_sets.alpha158_columns()),
            "features_alpha158",
            "Qlib's Alpha158 factors (KMID ... VSUMD60, 158 columns in Qlib's order), table "
            "`features_alpha158(instrument, date, ...)`, float32. VWAP0 is null when the source has no vwap.",
        ),
        FeatureSetSpec(
            "alpha360",
            tuple(qlib_sets.alpha360_columns()),
            "features_alpha360",
            "Qlib's Alpha360 factors (CLOSE59 ... VOLUME0: 60 days of close, open, high, low, vwap, volume "
            "relative to today's close/volume), table `features_alpha360(instrument, date, ...)`, float32.",
        ),
        FeatureSetSpec(
            "label",
            tuple(qlib_sets.LABEL_COLUMNS),
            "labels",
            "The label LABEL0 = Ref($close, -2) / Ref($close, -1) - 1 (return from t+1 to t+2), table "
            "`labels(instrument, date, LABEL0)`; null until the two following trading days exist.",
            role=LABEL,
        ),
    ]


def load_catalog(path: str | None = None) -> dict[str, FeatureSetSpec]:
    """The built-in sets, then the sets of the YAML file ``path`` (validated: a bad file raises
    ``features.user_sets.FeatureFileError`` naming the file, set, column and reason)."""
    sets = {spec.name: spec for spec in _builtins()}
    if path:
        from features.user_sets import load_user_sets

        for spec in load_user_sets(path, reserved=sets):
            sets[spec.name] = spec
    return sets


_ACTIVE: dict[str, Any] = {}


def activate(path: str | None) -> dict[str, FeatureSetSpec]:
    """Build the catalog for ``path`` (None: the built-ins only) and make it the one in force."""
    sets = load_catalog(path)
    _ACTIVE.clear()
    _ACTIVE.update(path=path, sets=sets)
    return sets


def active() -> dict[str, FeatureSetSpec]:
    """The catalog in force (the built-in sets if nothing activated one)."""
    if "sets" not in _ACTIVE:
        activate(None)
    return _ACTIVE["sets"]


def get(name: str) -> FeatureSetSpec:
    sets = active()
    try:
        return sets[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown feature set {name!r}; valid names: {sorted(sets)}") from None


def label_set() -> FeatureSetSpec:
    return next(s for s in active().values() if s.role == LABEL)


class CatalogView(Mapping[str, T], Generic[T]):
    """A read-only mapping over the catalog in force, ``name -> pick(spec)``: module-level names such as
    ``FEATURE_TABLES`` stay dictionaries to their users and follow the catalog the code location loaded."""

    def __init__(self, pick: Callable[[FeatureSetSpec], T], role: str | None = None) -> None:
        self._pick = pick
        self._role = role

    def _sets(self) -> dict[str, FeatureSetSpec]:
        return {k: s for k, s in active().items() if self._role is None or s.role == self._role}

    def __getitem__(self, name: str) -> T:
        return self._pick(self._sets()[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._sets())

    def __len__(self) -> int:
        return len(self._sets())

    def __repr__(self) -> str:
        return f"CatalogView({dict(self)!r})"
