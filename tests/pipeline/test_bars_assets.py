"""The bars group through real Dagster materializations against a temporary DuckDB file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from pipeline.definitions import build_resources
from tests.helpers import materialize_selection, range_tags, settings_for
from warehouse.sources import SyntheticSource
from warehouse.sources.qlib_bin import write_qlib_dir
from warehouse.sources.synthetic import SyntheticSpec
from warehouse.store import Warehouse


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_bars_range_backfill_in_one_run_then_idempotent_partition(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    result = materialize_selection(settings, "group:bars", tags=range_tags("2020-01-02", "2020-12-31"))
    assert result.success
    wh = Warehouse(settings.warehouse)
    full = wh.query("select * from bars order by instrument, date")
    source = SyntheticSource(SyntheticSpec.parse(settings.source.split(":", 1)[1]))
    assert full.height == source.read_bars(None).bars.height
    checks = _check_results(result)
    assert {c: e.passed for c, e in checks.items()} == {
        "bars_unique_keys": True,
        "bars_price_sanity": True,
        "bars_dates_in_calendar": True,
        "bars_membership_coverage": True,
    }
    mats = result.asset_materializations_for_node("bars")
    # One run and one step wrote the whole range; Dagster records each partition of it.
    assert len(result.get_step_success_events()) == 7  # calendar, universe, bars, four checks
    assert len(mats) == 261  # weekday partitions of 2020 from Thursday Jan 2
    assert mats[0].metadata["rows"].value == full.height

    # Re-materializing one day replaces exactly that day.
    again = materialize_selection(settings, "bars", partition_key="2020-03-10")
    assert again.success
    assert wh.query("select * from bars order by instrument, date").equals(full)
    # A holiday partition (the synthetic spring-festival week) has no trading day: it succeeds, writes nothing.
    weekend = materialize_selection(settings, "bars", partition_key="2020-02-04")
    assert weekend.success
    assert weekend.asset_materializations_for_node("bars")[0].metadata["rows"].value == 0
    assert wh.query("select count(*) as n from bars").item() == full.height


def test_checks_fail_on_planted_bad_data(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert materialize_selection(settings, "group:bars", tags=range_tags("2020-01-02", "2020-02-28")).success
    wh = Warehouse(settings.warehouse)
    victim = wh.query("select instrument, date from bars where instrument <> 'SYNIDX' order by all limit 1").row(0)
    wh.execute("update bars set high = low - 1 where instrument = ? and date = ?", list(victim))
    wh.execute("insert into bars (instrument, date, close) values (?, '2020-01-04', 5.0)", [victim[0]])  # Saturday
    wh.execute("insert into instruments values ('all', 'GHOST', '2020-01-01', '2020-12-31')")
    defs_resources = build_resources(settings)
    from assets.bars import build_bars_checks

    checks = {c.check_specs.__iter__().__next__().name: c for c in build_bars_checks()}
    ctx = dg.build_asset_check_context(resources={"warehouse": defs_resources["warehouse"]})
    price = checks["bars_price_sanity"](ctx)
    assert not price.passed and victim[0] in price.metadata["offending_rows"].value
    dates = checks["bars_dates_in_calendar"](ctx)
    assert not dates.passed and dates.metadata["outside"].value == 1
    coverage = checks["bars_membership_coverage"](ctx)
    assert not coverage.passed and "GHOST" in coverage.metadata["instruments"].value
    assert coverage.severity == dg.AssetCheckSeverity.WARN
    assert checks["bars_unique_keys"](ctx).passed


def test_strict_failure_leaves_warehouse_untouched_and_skip_mode_reports(tmp_path: Path) -> None:
    spec = SyntheticSpec(seed=5, instruments=6, start=dt.date(2021, 1, 1), end=dt.date(2021, 3, 31), core_size=3)
    synth = SyntheticSource(spec)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for (inst,), frame in synth.read_bars(None).bars.group_by(["instrument"]):
        frame.drop("instrument").write_csv(csv_dir / f"{inst}.csv")
    settings = settings_for(tmp_path, source=f"csv:{csv_dir}")
    assert materialize_selection(settings, "group:bars", tags=range_tags("2021-01-04", "2021-03-31")).success
    wh = Warehouse(settings.warehouse)
    before = wh.query("select * from bars order by instrument, date")

    (csv_dir / "SYN0002.csv").write_text('{"error": "quota exceeded"}')
    strict = settings_for(tmp_path, source=f"csv:{csv_dir}")
    from pipeline.resources import open_source_cached
    from warehouse.sources.base import SourceError

    open_source_cached.cache_clear()
    with pytest.raises(SourceError, match=r"SYN0002.csv: not a CSV file"):
        materialize_selection(strict, "bars", tags=range_tags("2021-01-04", "2021-03-31"))
    assert wh.query("select * from bars order by instrument, date").equals(before)

    open_source_cached.cache_clear()
    lenient = settings_for(tmp_path, source=f"csv:{csv_dir}", on_bad_file="skip")
    result = materialize_selection(lenient, "bars", tags=range_tags("2021-01-04", "2021-03-31"))
    meta = result.asset_materializations_for_node("bars")[0].metadata
    assert meta["skipped_files"].value == 1 and "SYN0002.csv" in meta["skipped"].value
    after = wh.query("select * from bars order by instrument, date")
    assert "SYN0002" not in after["instrument"].to_list()
    assert after.height == before.filter(pl.col("instrument") != "SYN0002").height
    open_source_cached.cache_clear()


def test_qlib_source_with_universe_and_benchmark(tmp_path: Path) -> None:
    spec = SyntheticSpec(seed=9, instruments=10, start=dt.date(2021, 1, 1), end=dt.date(2021, 6, 30), core_size=4)
    synth = SyntheticSource(spec)
    root = write_qlib_dir(
        tmp_path / "q", synth.read_bars(None).bars, synth.calendar(), {"core": synth.membership("core")}
    )
    settings = settings_for(tmp_path, source=f"qlib:{root}", universe="core", benchmark="SYNIDX")
    assert materialize_selection(settings, "group:bars", tags=range_tags("2021-01-04", "2021-06-30")).success
    wh = Warehouse(settings.warehouse)
    members = set(synth.membership("core")["instrument"].to_list())
    stored = set(wh.query("select distinct instrument from bars")["instrument"].to_list())
    assert stored == members | {"SYNIDX"}
    assert wh.query("select distinct universe from instruments").item() == "core"


def _vendor_csv_dir(root: Path, n_stocks: int = 30, n_days: int = 100, seed: int = 0) -> Path:
    """A vendor directory: one file per stock with an adjusted close, raw close == high / low on many rows, and
    splits / dividends that make the adjustment factor anything but a power of two."""
    rng = np.random.default_rng(seed)
    dates = pl.date_range(dt.date(2021, 1, 4), dt.date(2021, 12, 31), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5)[:n_days]
    root.mkdir(parents=True)
    for i in range(n_stocks):
        close = np.round(20 * np.exp(np.cumsum(rng.normal(0, 0.02, n_days))), 2)
        high = np.round(close * (1 + rng.uniform(0, 0.03, n_days)), 2)
        low = np.round(close * (1 - rng.uniform(0, 0.03, n_days)), 2)
        limit = rng.uniform(size=n_days)
        high = np.where(limit < 0.2, close, high)  # limit-up style closes at the high
        low = np.where(limit > 0.8, close, low)  # and at the low
        open_ = np.round(np.clip(close * (1 + rng.normal(0, 0.01, n_days)), low, high), 2)
        # factor jumps at a split and drifts with dividends: 1/3, 0.7183..., never exact in binary
        factor = np.where(np.arange(n_days) < n_days // 2, 1 / 3, 0.71828) * (1 + 0.001 * np.arange(n_days))
        frame = pl.DataFrame(
            {
                "timestamp": dates,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "adjusted_close": np.round(close * factor, 6),
                "volume": rng.integers(1_000, 100_000, n_days).astype(float),
                "dividend_amount": 0.0,
                "split_coefficient": 1.0,
            }
        )
        frame.write_csv(root / f"STK{i:03d}.csv")
    return root


def _naive_adjustment_breaks_ordering(root: Path) -> int:
    """Rows where the old rule (close = adj close, high = high × adj close / close) breaks low <= close <= high."""
    raw = pl.concat([pl.read_csv(p) for p in sorted(root.glob("*.csv"))])
    f = pl.col("adjusted_close") / pl.col("close")
    return raw.filter(
        (pl.col("adjusted_close") > pl.col("high") * f) | (pl.col("adjusted_close") < pl.col("low") * f)
    ).height


def _plant_glitches(root: Path, n: int) -> list[tuple[str, str]]:
    """``n`` rows (one per file) where the vendor swapped high and low."""
    planted = []
    for path in sorted(root.glob("*.csv"))[:n]:
        frame = pl.read_csv(path, try_parse_dates=True)
        row = 7
        hi, lo = frame["high"][row], frame["low"][row]
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == row).then(lo).otherwise(pl.col("high")).alias("high"),
            pl.when(pl.int_range(pl.len()) == row).then(hi).otherwise(pl.col("low")).alias("low"),
        )
        frame.write_csv(path)
        planted.append((path.stem, str(frame["timestamp"][row])))
    return planted


VENDOR_RANGE = range_tags("2021-01-04", "2021-05-21")  # the 100 weekdays of _vendor_csv_dir
AFTER_BARS = "group:bars or key:labels or key:features_alpha158"


def test_vendor_csv_with_adjusted_close_passes_price_sanity(tmp_path: Path) -> None:
    from pipeline.resources import open_source_cached

    root = _vendor_csv_dir(tmp_path / "vendor")
    assert _naive_adjustment_breaks_ordering(root) > 0  # the data does exercise the rounding case
    open_source_cached.cache_clear()
    settings = settings_for(tmp_path, source=f"csv:{root}")
    result = materialize_selection(settings, "group:bars", tags=VENDOR_RANGE)
    assert result.success
    price = _check_results(result)["bars_price_sanity"]
    assert price.passed and price.metadata["bad_rows"].value == 0
    assert price.metadata["rows"].value == 3000
    wh = Warehouse(settings.warehouse)
    equal = wh.query(
        "select count(*) filter (where close = high) as hi, count(*) filter (where close = low) as lo from bars"
    )
    assert equal["hi"].item() > 300 and equal["lo"].item() > 300  # equal raw prices stayed equal
    open_source_cached.cache_clear()


def test_price_glitches_warn_within_threshold_and_block_above(tmp_path: Path) -> None:
    from pipeline.resources import open_source_cached

    root = _vendor_csv_dir(tmp_path / "vendor")
    planted = _plant_glitches(root, 2)  # 2 rows of 3000: 0.067 %, under the 0.1 % default
    open_source_cached.cache_clear()
    settings = settings_for(tmp_path, source=f"csv:{root}")
    assert settings.max_bad_price_fraction == 0.001
    result = materialize_selection(settings, AFTER_BARS, tags=VENDOR_RANGE)
    assert result.success
    price = _check_results(result)["bars_price_sanity"]
    assert not price.passed and price.severity == dg.AssetCheckSeverity.WARN
    meta = price.metadata
    assert meta["bad_rows"].value == 2 and meta["low <= high"].value == 2 and meta["max_bad_fraction"].value == 0.001
    assert meta["bad_fraction"].value == pytest.approx(2 / 3000)
    for inst, day in planted:
        assert f"| {inst} | {day} |" in meta["offending_rows"].value
    # downstream ran in the same run
    assert result.asset_materializations_for_node("labels")
    assert result.asset_materializations_for_node("features_alpha158")
    wh = Warehouse(settings.warehouse)
    assert wh.query("select count(*) from features_alpha158").item() == 3000

    # Above a stricter threshold (PIPELINE_MAX_BAD_PRICE_FRACTION) the same rows are an ERROR that blocks.
    open_source_cached.cache_clear()
    strict = settings_for(tmp_path / "strict", source=f"csv:{root}", max_bad_price_fraction=0.0005)
    blocked = materialize_selection(strict, AFTER_BARS, tags=VENDOR_RANGE, raise_on_error=False)
    assert not blocked.success
    price = _check_results(blocked)["bars_price_sanity"]
    assert not price.passed and price.severity == dg.AssetCheckSeverity.ERROR
    assert "above the threshold" in (price.description or "")
    assert not blocked.asset_materializations_for_node("labels")
    assert not blocked.asset_materializations_for_node("features_alpha158")
    open_source_cached.cache_clear()


def test_max_bad_price_fraction_setting() -> None:
    from pipeline.settings import Settings

    assert Settings.from_env({}).max_bad_price_fraction == 0.001
    assert Settings.from_env({"PIPELINE_MAX_BAD_PRICE_FRACTION": "0.02"}).max_bad_price_fraction == 0.02
    for bad in ("1.5", "-0.1", "nan", "a lot"):
        with pytest.raises(ValueError, match=r"PIPELINE_MAX_BAD_PRICE_FRACTION must be a fraction between 0 and 1"):
            Settings.from_env({"PIPELINE_MAX_BAD_PRICE_FRACTION": bad})


def test_degenerate_input_strict_fails_untouched_skip_lists(tmp_path: Path) -> None:
    from pipeline.resources import open_source_cached
    from warehouse.sources.base import SourceError

    root = _vendor_csv_dir(tmp_path / "vendor", n_stocks=4)
    (root / "instruments").mkdir()
    members = root / "instruments" / "mine.txt"
    members.write_text("".join(f"STK{i:03d}\t2021-01-04\t2021-05-21\n" for i in range(4)))
    open_source_cached.cache_clear()
    settings = settings_for(tmp_path, source=f"csv:{root}", universe="mine")
    assert materialize_selection(settings, "group:bars", tags=VENDOR_RANGE).success
    wh = Warehouse(settings.warehouse)
    before = {t: wh.query(f"select * from {t} order by all") for t in ("bars", "instruments", "calendar")}

    # An instruments line that ends before it starts, and a file with a header and no rows.
    members.write_text(members.read_text() + "STK009\t2021-03-01\t2021-02-01\n")
    open_source_cached.cache_clear()
    with pytest.raises(SourceError, match=r"mine.txt, line 5: instrument STK009 ends \(2021-02-01\) before"):
        materialize_selection(settings, "group:bars", tags=VENDOR_RANGE)
    (root / "STK002.csv").write_text("timestamp,open,high,low,close,adjusted_close,volume\n")
    open_source_cached.cache_clear()
    with pytest.raises(SourceError, match=r"STK002.csv: header row but no data rows"):
        materialize_selection(settings, "group:bars", tags=VENDOR_RANGE)
    for table, frame in before.items():
        assert wh.query(f"select * from {table} order by all").equals(frame), table

    open_source_cached.cache_clear()
    lenient = settings_for(tmp_path, source=f"csv:{root}", universe="mine", on_bad_file="skip")
    result = materialize_selection(lenient, "group:bars", tags=VENDOR_RANGE)
    assert result.success
    uni = result.asset_materializations_for_node("universe")[0].metadata
    assert uni["skipped_lines"].value == 1 and "mine.txt, line 5" in uni["skipped"].value
    bars_meta = result.asset_materializations_for_node("bars")[0].metadata
    assert bars_meta["skipped_files"].value == 2
    assert "STK002.csv" in bars_meta["skipped"].value and "mine.txt, line 5" in bars_meta["skipped"].value
    assert "STK002" not in wh.query("select distinct instrument from bars")["instrument"].to_list()
    assert wh.query("select count(*) from instruments").item() == 4  # the good lines (STK002 stays a member)
    open_source_cached.cache_clear()
