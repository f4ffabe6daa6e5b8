"""Headless command line.

``python -m pipeline materialize --select SELECTION [--start DATE] [--end DATE]`` runs an asset selection
(Dagster's selection syntax) over a date range on the persistent instance, so the run appears in the UI.
``python -m pipeline summary`` prints what the warehouse holds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

import dagster as dg

from pipeline.instance import persistent_instance
from pipeline.settings import Settings


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    mat = sub.add_parser("materialize", help="materialize an asset selection over a date range")
    mat.add_argument("--select", required=True, help="Dagster asset selection, e.g. '*' or 'group:bars'")
    mat.add_argument("--start", type=_date, help="first date (default: the source's first trading day)")
    mat.add_argument("--end", type=_date, help="last date (default: the source's last trading day)")
    mat.add_argument("--summary", action="store_true", help="print a summary of the warehouse afterwards")
    sub.add_parser("summary", help="print what the warehouse holds")
    return parser


def materialize(
    select: str,
    start: dt.date | None,
    end: dt.date | None,
    settings: Settings | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    from pipeline.definitions import build_definitions
    from pipeline.resources import _open_cached

    settings = settings or Settings.from_env()
    defs = build_definitions(settings)
    calendar = _open_cached(settings.source, settings.on_bad_file).calendar()
    # Partition keys run from the first trading day; earlier dates hold nothing to build.
    start = max(start or calendar[0], calendar[0])
    end = end or calendar[-1]
    if end < start:
        raise SystemExit(f"--end {end} is before --start {start}")
    selection = dg.AssetSelection.from_string(select)
    repo = defs.get_repository_def()
    asset_graph = repo.asset_graph
    keys = selection.resolve(asset_graph)
    if not keys:
        raise SystemExit(f"selection {select!r} matches no asset")
    partitioned = any(asset_graph.get(k).is_partitioned for k in keys)
    tags = {}
    if partitioned:
        tags = {
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": end.isoformat(),
        }
    return dg.materialize(
        assets=list(defs.assets or []) + list(defs.asset_checks or []),
        selection=selection,
        resources=defs.resources,
        instance=instance or persistent_instance(),
        tags=tags,
    )


def print_summary(settings: Settings | None = None) -> None:
    from pipeline.summary import warehouse_summary

    print(warehouse_summary(settings or Settings.from_env()))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "materialize":
        result = materialize(args.select, args.start, args.end)
        if not result.success:
            print("run failed", file=sys.stderr)
            return 1
        if args.summary:
            print_summary()
        return 0
    if args.command == "summary":
        print_summary()
        return 0
    return 2
