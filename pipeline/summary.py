"""A short text summary of what the warehouse holds (printed at the end of `make run`)."""

from __future__ import annotations

from pipeline.settings import Settings
from warehouse.store import Warehouse


def warehouse_summary(settings: Settings) -> str:
    wh = Warehouse(settings.warehouse)
    lines = [f"warehouse {wh.path}", f"source {settings.source}  universe {settings.universe or 'all'}"]
    with wh.connect(read_only=True) as con:
        tables = [r[0] for r in con.execute("select table_name from information_schema.tables order by 1").fetchall()]
        for table in tables:
            cols = {
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns where table_name = ?", [table]
                ).fetchall()
            }
            n = con.execute(f'select count(*) from "{table}"').fetchone()[0]
            span = ""
            if "date" in cols and n:
                lo, hi = con.execute(f'select min(date), max(date) from "{table}"').fetchone()
                span = f"  {lo} .. {hi}"
            lines.append(f"  {table:<22} {n:>12,} rows{span}")
    return "\n".join(lines)
