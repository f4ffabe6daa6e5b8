"""What the trainer and the scorer share: the device choice, progress lines, seeding, timing, autocast."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from models.config import ModelConfig

Log = Callable[[str], Any] | logging.Logger | None  # a callable or anything with .info


def resolve_device(name: str | torch.device = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; explicit names are checked."""
    text = str(name)
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"device={text!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:n]'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={text!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={text!r} requested but MPS is not available; use 'auto' or 'cpu'")
    return text


def emit(log: Log, message: str) -> None:
    """Send a progress line to ``log`` (a logger, a callable, or None for silence)."""
    if log is None:
        return
    if hasattr(log, "info"):
        log.info(message)
    else:
        log(message)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch (inside a forked RNG state, so the caller's stream is untouched) and numpy, as Qlib does;
    on CUDA ask cuDNN for its deterministic kernels for the duration."""
    cuda = device.type == "cuda"
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if cuda else []
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        if cuda:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        try:
            yield
        finally:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


class PhaseTimer:
    """Time of the training passes: CUDA events (read after the epoch's synchronisation) or the wall clock."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.total = 0.0

    def start(self) -> None:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            self._end = torch.cuda.Event(enable_timing=True)
            self._end.record()
        else:
            self.total += time.perf_counter() - self._t0

    def collect(self) -> None:
        """Call after a synchronisation."""
        if self.cuda:
            self.total += self._start.elapsed_time(self._end) / 1000.0


def autocast_for(config: ModelConfig, device: torch.device) -> contextlib.AbstractContextManager:
    if config.bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
