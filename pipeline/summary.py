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
            n = con.execute(f'select count(*) from "{table}"').fetchall()[0][0]
            span = ""
            if "date" in cols and n:
                lo, hi = con.execute(f'select min(date), max(date) from "{table}"').fetchall()[0]
                span = f"  {lo} .. {hi}"
            lines.append(f"  {table:<22} {n:>12,} rows{span}")
        if "leaderboard" in tables:
            board = con.sql(
                "select model, ic, icir, rank_ic, rank_icir, ann_return_with_cost, ir_with_cost, mdd_with_cost, "
                "train_time_s from leaderboard order by ic desc"
            ).pl()
            if board.height:
                lines += ["", "leaderboard (test segment; excess return with cost)", _table(board)]
    return "\n".join(lines)


def _table(frame) -> str:
    header = ["model", "IC", "ICIR", "RankIC", "RankICIR", "AnnRet", "IR", "MaxDD", "train s"]
    rows = [header] + [
        [r[0]] + [f"{v:.4f}" if isinstance(v, float) else str(v) for v in r[1:-1]] + [f"{r[-1]:.1f}"]
        for r in frame.iter_rows()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  " + "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
