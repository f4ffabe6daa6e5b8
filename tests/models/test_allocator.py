"""The models package turns on PyTorch's huge-page CPU allocation before any tensor exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")

PROBE = """
import os
import torch
import models.config  # the package's import sets the allocator option
x = torch.ones(64 << 20, dtype=torch.uint8)
huge = [int(line.split()[1]) for line in open("/proc/self/smaps_rollup") if line.startswith("AnonHugePages")]
print(os.environ.get("THP_MEM_ALLOC_ENABLE"), huge[0] if huge else -1)
"""


def _probe(env_value: str | None) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if env_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


def _thp_available() -> bool:
    if not THP_MODE.is_file() or not Path("/proc/self/smaps_rollup").is_file():
        return False
    mode = THP_MODE.read_text()
    return "[always]" in mode or "[madvise]" in mode


def test_importing_models_sets_the_option_and_keeps_the_users_choice() -> None:
    assert _probe(None)[0] == "1"
    assert _probe("0")[0] == "0"


@pytest.mark.skipif(not _thp_available(), reason="the kernel offers no transparent huge pages (mode never)")
def test_a_large_tensor_lands_on_huge_pages() -> None:
    on, off = _probe(None)[1], _probe("0")[1]
    assert on >= 32 * 1024  # KiB: most of the 64 MB tensor
    assert off < on
