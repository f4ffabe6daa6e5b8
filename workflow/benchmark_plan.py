"""What a benchmark run trains (configurations, seeds, epoch budget, device) and the defaults of Qlib's protocol;
torch-free, so the command line and the Launchpad form read it without loading the training code."""

from __future__ import annotations

from dataclasses import dataclass

from models.config import ModelConfig, get_model_config

# Qlib's protocol: five seeds, each configuration's own epoch budget (200 with early stopping). On the CPU the
# default is reduced (two seeds, one epoch), where one Alpha360 epoch over CSI300 2010-2016 takes minutes.
FULL_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
CPU_SEEDS: tuple[int, ...] = (0, 1)
CPU_MAX_EPOCHS = 1


def default_budget(cuda: bool) -> tuple[tuple[int, ...], int]:
    """(seeds, max_epochs) of a benchmark run that does not set them: Qlib's protocol with CUDA."""
    return (FULL_SEEDS, 0) if cuda else (CPU_SEEDS, CPU_MAX_EPOCHS)


@dataclass(frozen=True)
class BenchmarkPlan:
    """What one benchmark run trains: configurations, seeds, the epoch budget and where."""

    models: tuple[str, ...]
    seeds: tuple[int, ...]
    max_epochs: int = 0  # 0: the configuration's own n_epochs (Qlib's YAML: 200, with early stopping)
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 leaves torch's default

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("benchmark: no model configuration selected")
        for name in self.models:
            get_model_config(name)  # raises naming the unknown configuration
        if not self.seeds:
            raise ValueError("benchmark: at least one seed is needed")
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ValueError(f"benchmark seeds must be distinct non-negative integers, got {list(self.seeds)}")
        if self.max_epochs < 0:
            raise ValueError(f"benchmark max_epochs must be 0 (no cap) or positive, got {self.max_epochs}")
        if self.threads < 0:
            raise ValueError(f"benchmark threads must be 0 (torch's default) or positive, got {self.threads}")

    def config(self, name: str, seed: int) -> ModelConfig:
        base = get_model_config(name)
        epochs = min(base.n_epochs, self.max_epochs) if self.max_epochs else base.n_epochs
        return base.replace(seed=seed, n_epochs=epochs)
