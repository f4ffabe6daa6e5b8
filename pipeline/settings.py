"""The configuration contract: environment variables read once when the code location loads."""

from __future__ import annotations

import functools
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
    profile_note: str = ""  # which training profile was chosen and why, logged at the start of a run
    # bars_price_sanity: violations in at most this fraction of the rows warn, more block (warehouse.quality)
    max_bad_price_fraction: float = 0.001
    # PIPELINE_FEATURES: a YAML file of users' own feature sets (features.user_sets); None: the built-ins only
    features: str | None = None
    # The daily schedule (pipeline.automation): its cron in the market's time zone (after the 15:00 close), a
    # retrain every this many trading days (1: daily), and how many calendar days each daily run refreshes.
    schedule_cron: str = "30 16 * * 1-5"
    retrain_every: int = 1
    refresh_days: int = 14

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
        max_bad = _fraction(env, "PIPELINE_MAX_BAD_PRICE_FRACTION", 0.001)
        profile, profile_note = choose_profile(env.get("PIPELINE_PROFILE", ""), source, device)
        features = (env.get("PIPELINE_FEATURES") or "").strip()
        cron = (env.get("PIPELINE_SCHEDULE_CRON") or "").strip() or cls.schedule_cron
        if len(cron.split()) != 5:
            raise ValueError(f"PIPELINE_SCHEDULE_CRON must be a 5-field cron expression, got {cron!r}")
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
            profile_note=profile_note,
            max_bad_price_fraction=max_bad,
            features=str(Path(features).expanduser().resolve()) if features else None,
            schedule_cron=cron,
            retrain_every=_positive_int(env, "PIPELINE_RETRAIN_EVERY", cls.retrain_every),
            refresh_days=_positive_int(env, "PIPELINE_REFRESH_DAYS", cls.refresh_days),
        )


def _positive_int(env: dict[str, str], name: str, default: int) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {text!r}")
    return value


def _fraction(env: dict[str, str], name: str, default: float) -> float:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a fraction between 0 and 1 (e.g. 0.001), got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise ValueError(f"{name} must be a fraction between 0 and 1 (e.g. 0.001), got {text!r}")
    return value


PROFILE_NAMES = ("quick", "cpu", "benchmark", "smoke")
BENCHMARK_NOTE = "benchmark would train Qlib's full budget (up to 200 epochs, early stopping) instead"


# What a machine with an NVIDIA driver has (Linux; /dev/dxg: WSL). Without any of them CUDA cannot be there,
# and the answer costs no torch import (about 2 s), which a features-only command never needs otherwise.
NVIDIA_DRIVER_PATHS = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg")


@functools.cache
def cuda_available() -> bool:
    if not any(os.path.exists(p) for p in NVIDIA_DRIVER_PATHS):
        return False
    import torch  # lazily: only real data without an explicit profile or device needs to look

    return torch.cuda.is_available()


def choose_profile(requested: str, source: str, device: str, cuda: bool | None = None) -> tuple[str, str]:
    """The training profile and a one-line note saying why. ``PIPELINE_PROFILE`` wins; the synthetic market
    gets ``quick``; real data gets ``benchmark`` (Qlib's full budget) when training runs on CUDA, ``cpu``
    (Qlib's networks, a bounded budget) otherwise. ``cuda`` overrides the detection (tests)."""
    profile = requested.strip().lower()
    if profile:
        if profile not in PROFILE_NAMES:
            raise ValueError(f"PIPELINE_PROFILE must be one of {', '.join(PROFILE_NAMES)}, got {profile!r}")
        return profile, f"training profile {profile} (PIPELINE_PROFILE)"
    if source.startswith("synthetic"):
        return "quick", "training profile quick (synthetic market; PIPELINE_PROFILE=benchmark for Qlib's budget)"
    on_cuda = device == "cuda" or (device == "auto" and (cuda_available() if cuda is None else cuda))
    if on_cuda:
        return "benchmark", "training profile benchmark (real data, CUDA): Qlib's full budget, up to 200 epochs"
    return "cpu", (
        "training profile cpu (real data, no CUDA): Qlib's networks (the Transformer's feed-forward and TCN's "
        "channels narrowed), 2 epochs of about 200 batches of 800 samples each; "
        f"with a GPU (or PIPELINE_PROFILE=benchmark) the {BENCHMARK_NOTE}"
    )
