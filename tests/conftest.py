"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
QLIB_CN_DIR = (REPO_ROOT / ".." / "shared" / "data" / "qlib_cn").resolve()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def qlib_cn_dir() -> Path:
    """The real CSI300 data beside the checkout; tests that use it skip cleanly without it."""
    if not (QLIB_CN_DIR / "calendars" / "day.txt").is_file():
        pytest.skip(f"real data not present at {QLIB_CN_DIR}")
    return QLIB_CN_DIR
