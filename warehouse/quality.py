"""Data-quality checks on the warehouse's bars, as plain functions (the Dagster asset checks wrap them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from warehouse.store import Warehouse


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


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


def check_price_sanity(warehouse: Warehouse) -> CheckOutcome:
    rules = {
        "low <= open <= high": "not (low <= open and open <= high)",
        "low <= close <= high": "not (low <= close and close <= high)",
        "positive prices": "least(open, high, low, close) <= 0",
        "non-negative volume": "volume < 0",
    }
    counts = {name: _count(warehouse, f"select count(*) from bars where {cond}") for name, cond in rules.items()}
    bad = " or ".join(f"({c})" for c in rules.values())
    examples = _examples(warehouse, f"select instrument, date, open, high, low, close, volume from bars where {bad}")
    total = sum(counts.values())
    return CheckOutcome(total == 0, f"{total} rule violations", {**counts, "examples": examples})


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
