"""Data-quality checks on the warehouse's bars, as plain functions (the Dagster asset checks wrap them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from warehouse.store import Warehouse

# float32 (the precision of Qlib's data and of the features) has a relative spacing of 2**-23; four ulps absorb
# the rounding of an adjustment (price × factor, computed separately per price) and of a float32 round-trip,
# while a real glitch (a tick is 1e-4 of a price or more) is far above it.
PRICE_RTOL = 4 * 2.0**-23
# Violations in at most this fraction of the bars rows are a warning (rows listed, downstream runs); above it
# the blocking check fails with ERROR. 0.1 %: a vendor's genuine glitches are a handful of rows in a million,
# while a broken feed or a wrong adjustment touches whole files (percents of the rows).
DEFAULT_MAX_BAD_PRICE_FRACTION = 0.001
MAX_LISTED_ROWS = 50


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)
    #: "warn" or "error" when the check decides its own severity (None: the caller's default)
    severity: str | None = None


def _count(warehouse: Warehouse, sql: str) -> int:
    return int(warehouse.query(sql).item())


def _examples(warehouse: Warehouse, sql: str, limit: int = 10) -> list[str]:
    frame = warehouse.query(f"{sql} limit {limit}")
    return [", ".join(f"{k}={v}" for k, v in row.items()) for row in frame.iter_rows(named=True)]


def check_unique_keys(warehouse: Warehouse) -> CheckOutcome:
    dup_sql = "select instrument, date, count(*) as n from bars group by all having count(*) > 1"
    n = _count(warehouse, f"select count(*) from ({dup_sql})")
    return CheckOutcome(
        n == 0,
        f"{n} duplicated (instrument, date) keys",
        {"duplicates": n, "examples": _examples(warehouse, dup_sql)},
    )


def check_price_sanity(warehouse: Warehouse, max_bad_fraction: float = DEFAULT_MAX_BAD_PRICE_FRACTION) -> CheckOutcome:
    """OHLC ordering (within PRICE_RTOL), positive prices, non-negative volume.

    Fails with severity "warn" while the rows violating a rule are at most ``max_bad_fraction`` of the bars
    rows, "error" above it; the offending rows are listed (at most MAX_LISTED_ROWS) either way.
    """
    lo, hi = f"low * (1 - {PRICE_RTOL!r})", f"high * (1 + {PRICE_RTOL!r})"
    rules = {
        "low <= high": f"low > {hi}",
        "low <= open <= high": f"(open < {lo} or open > {hi})",
        "low <= close <= high": f"(close < {lo} or close > {hi})",
        "positive prices": "least(open, high, low, close) <= 0",
        "non-negative volume": "volume < 0",
    }
    counts = {name: _count(warehouse, f"select count(*) from bars where {cond}") for name, cond in rules.items()}
    bad = " or ".join(f"coalesce({c}, false)" for c in rules.values())
    bad_rows = _count(warehouse, f"select count(*) from bars where {bad}")
    total = _count(warehouse, "select count(*) from bars")
    fraction = bad_rows / total if total else 0.0
    listed = warehouse.query(
        f"select instrument, date, open, high, low, close, volume from bars where {bad} "
        f"order by instrument, date limit {MAX_LISTED_ROWS}"
    )
    table = "| instrument | date | open | high | low | close | volume |\n|---|---|---|---|---|---|---|\n" + "\n".join(
        "| " + " | ".join(str(v) for v in row) + " |" for row in listed.iter_rows()
    )
    if bad_rows > listed.height:
        table += f"\n\n... and {bad_rows - listed.height} more rows"
    severity = "error" if fraction > max_bad_fraction else "warn"
    verdict = "" if bad_rows == 0 else (" (above the threshold)" if severity == "error" else " (within the threshold)")
    return CheckOutcome(
        bad_rows == 0,
        f"{bad_rows} of {total} rows ({fraction:.4%}) break a price rule; threshold {max_bad_fraction:.4%}{verdict}",
        {
            **counts,
            "bad_rows": bad_rows,
            "rows": total,
            "bad_fraction": fraction,
            "max_bad_fraction": max_bad_fraction,
            "offending_rows": table if bad_rows else "none",
        },
        severity=None if bad_rows == 0 else severity,
    )


def check_dates_in_calendar(warehouse: Warehouse) -> CheckOutcome:
    sql = "select instrument, date from bars anti join calendar using (date)"
    n = _count(warehouse, f"select count(*) from ({sql})")
    return CheckOutcome(
        n == 0, f"{n} bars dated outside the calendar", {"outside": n, "examples": _examples(warehouse, sql)}
    )


def check_membership_coverage(warehouse: Warehouse) -> CheckOutcome:
    """Members of the universe with no bar inside any of their membership ranges."""
    sql = """
        select m.instrument, min(m.start_date) as first_member_day, max(m.end_date) as last_member_day
        from instruments m
        where m.end_date >= (select min(date) from bars) and m.start_date <= (select max(date) from bars)
          and not exists (
            select 1 from bars b
            where b.instrument = m.instrument and b.date between m.start_date and m.end_date
        )
        group by m.instrument order by m.instrument
    """
    missing = warehouse.query(sql)
    members = _count(
        warehouse,
        "select count(distinct instrument) from instruments where end_date >= (select min(date) from bars) "
        "and start_date <= (select max(date) from bars)",
    )
    names = missing["instrument"].to_list()
    return CheckOutcome(
        not names,
        f"{len(names)} of {members} members have no bars in their membership ranges",
        {"members": members, "members_without_data": len(names), "instruments": ", ".join(names) or "none"},
    )
