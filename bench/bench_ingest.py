"""Ingest speed: the whole Qlib directory (every instrument, every field, every day) into a fresh DuckDB file.

    .venv/bin/python bench/bench_ingest.py [QLIB_DIR]

Prints rows per second for reading the binary files and for the transactional write. Target: all of
../shared/data/qlib_cn in under 15 s on 2 cores.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from warehouse.ingest import sync_calendar, sync_membership  # noqa: E402
from warehouse.sources import QlibBinSource  # noqa: E402
from warehouse.store import Warehouse  # noqa: E402


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data" / "qlib_cn"
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "bench.duckdb")
        t0 = time.perf_counter()
        source = QlibBinSource(root)
        sync_calendar(source, wh)
        sync_membership(source, wh, None, None)
        t1 = time.perf_counter()
        bars = source.read_bars(None).bars
        t2 = time.perf_counter()
        cal = source.calendar()
        wh.replace("bars", bars, date_range=(cal[0], cal[-1]))
        t3 = time.perf_counter()
    rows = bars.height
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"source        {root}")
    print(f"instruments   {bars['instrument'].n_unique()}   rows {rows:,}   fields {bars.width - 2}")
    print(f"calendar+universe  {t1 - t0:6.2f} s")
    print(f"read .bin files    {t2 - t1:6.2f} s   {rows / (t2 - t1):12,.0f} rows/s")
    print(f"write (1 txn)      {t3 - t2:6.2f} s   {rows / (t3 - t2):12,.0f} rows/s")
    print(f"total              {t3 - t0:6.2f} s   {rows / (t3 - t0):12,.0f} rows/s   peak RSS {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
