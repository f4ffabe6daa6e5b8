"""``python -m pipeline features list`` and ``python -m pipeline features show SET``: the feature-set catalog.

``list`` prints one line per set (name, column count, lookback and horizon in trading days, source: built-in
or the PIPELINE_FEATURES file); ``show`` prints ``NAME<TAB>EXPRESSION`` per column of one set, in order, in
Qlib's expression language (Qlib's own text for the built-in sets).
"""

from __future__ import annotations

import argparse
import sys

from pipeline.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    feats = sub.add_parser("features", help="list the feature sets, or show one set's expressions")
    verbs = feats.add_subparsers(dest="features_command", required=True)
    verbs.add_parser("list", help="every feature set: columns, lookback, horizon, source")
    show = verbs.add_parser("show", help="one set's columns as NAME<TAB>EXPRESSION, in order")
    show.add_argument("set", help="feature set name (see `features list`)")


def _lookback_text(spec) -> str:
    return "all" if spec.unbounded else str(spec.lookback)


def list_lines(sets: dict) -> list[str]:
    rows = [("set", "columns", "lookback", "horizon", "source")]
    rows += [(s.name, str(len(s.columns)), _lookback_text(s), str(s.horizon), s.source) for s in sets.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(r[:4], widths, strict=True)), r[4]]) for r in rows]


def show_lines(sets: dict, name: str) -> list[str]:
    if name not in sets:
        raise SystemExit(f"unknown feature set {name!r}; valid names: {', '.join(sets)}")
    return [f"{column}\t{text}" for column, text in sets[name].columns]


def run(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """The `features` command; a bad PIPELINE_FEATURES file is reported (exit 2), not raised."""
    from features.catalog import load_catalog
    from features.user_sets import FeatureFileError

    try:
        settings = settings or Settings.from_env()
        sets = load_catalog(settings.features)
        lines = list_lines(sets) if args.features_command == "list" else show_lines(sets, args.set)
    except FeatureFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0
