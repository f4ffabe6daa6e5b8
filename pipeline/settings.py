"""The configuration contract: environment variables read once when the code location loads."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Settings:
    """Where the warehouse lives, which market data feeds it, and where models train."""

    warehouse: str
    source: str
    universe: str | None
    benchmark: str | None
    device: str
    on_bad_file: str
    timezone: str
    profile: str
    segments: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        device = env.get("PIPELINE_DEVICE", "auto").strip().lower() or "auto"
        if device not in DEVICES:
            raise ValueError(f"PIPELINE_DEVICE must be one of {', '.join(DEVICES)}, got {device!r}")
        on_bad = env.get("PIPELINE_ON_BAD_FILE", "fail").strip().lower() or "fail"
        if on_bad not in ("fail", "skip"):
            raise ValueError(f"PIPELINE_ON_BAD_FILE must be 'fail' or 'skip', got {on_bad!r}")
        source = env.get("PIPELINE_SOURCE", "synthetic").strip() or "synthetic"
        profile = env.get("PIPELINE_PROFILE", "").strip().lower()
        if not profile:
            # The synthetic default trains a quick configuration so that `make run` ends in minutes on a
            # laptop; real data gets Qlib's benchmark settings.
            profile = "quick" if source.startswith("synthetic") else "benchmark"
        if profile not in ("quick", "benchmark", "smoke"):
            raise ValueError(f"PIPELINE_PROFILE must be 'quick', 'benchmark' or 'smoke', got {profile!r}")
        return cls(
            warehouse=str(
                Path(env.get("PIPELINE_WAREHOUSE") or REPO_ROOT / "data" / "warehouse.duckdb").expanduser().resolve()
            ),
            source=source,
            universe=(env.get("PIPELINE_UNIVERSE") or "").strip() or None,
            benchmark=(env.get("PIPELINE_BENCHMARK") or "").strip().upper() or None,
            device=device,
            on_bad_file=on_bad,
            timezone=env.get("PIPELINE_TIMEZONE", "Asia/Shanghai").strip() or "Asia/Shanghai",
            profile=profile,
            segments=(env.get("PIPELINE_SEGMENTS") or "").strip() or None,
        )
