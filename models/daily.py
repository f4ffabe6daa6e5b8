"""Qlib's daily batching: one trading day's cross-section per batch.

Qlib's non-TS GATs, HIST and IGMTF cut the (datetime, instrument)-sorted frame into days (``get_daily_inter``)
and shuffle the days every training epoch; GATs_ts iterates them in date order (``DailyBatchSampler``). Here the
samples are sorted by (date, instrument) once: ``order`` (sample numbers in that order) and ``day_of`` (each
sorted position's day number) live on the device, and a day's batch is the slice ``order[start:start + count]``,
a view, so no batch is ever built on the host. The day offsets are also kept on the host as integers, because a
slice needs plain integers and reading them from the device would cost a synchronisation per day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from processing.samples import SampleSet


@dataclass
class DayIndex:
    order: torch.Tensor  # [n] long: sample numbers sorted by (date, instrument)
    day_of: torch.Tensor  # [n] long: day number (0 = first date) of each position of ``order``
    starts: np.ndarray  # [n_days] int64: first position of each day in ``order``
    counts: np.ndarray  # [n_days] int64: samples of each day

    @classmethod
    def from_samples(cls, samples: SampleSet, device: torch.device | str, keep: np.ndarray | None = None) -> DayIndex:
        """The days of ``samples`` (of the samples where ``keep`` holds, when given)."""
        numbers = np.arange(samples.n_samples) if keep is None else np.flatnonzero(keep)
        dates = samples.dates[numbers]
        order = numbers[np.lexsort((samples.instruments[numbers], dates))]
        _, day, counts = np.unique(samples.dates[order], return_inverse=True, return_counts=True)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        device = torch.device(device)
        return cls(
            order=torch.as_tensor(order, dtype=torch.long).to(device),
            day_of=torch.as_tensor(day.reshape(-1), dtype=torch.long).to(device),
            starts=starts,
            counts=counts.astype(np.int64),
        )

    @property
    def n_days(self) -> int:
        return len(self.counts)

    @property
    def n_samples(self) -> int:
        return int(self.counts.sum())

    def day(self, d: int) -> torch.Tensor:
        """Sample numbers of day ``d`` (sorted by instrument)."""
        start = int(self.starts[d])
        return self.order[start : start + int(self.counts[d])]

    def epoch_days(self, generator: torch.Generator, shuffle: bool, cap: int = 0) -> list[int]:
        """The days one training epoch visits: all of them, shuffled by ``generator`` or in date order.

        With ``cap`` (``max_batches_per_epoch``) only ``cap`` days: the first of the seeded shuffle, so a capped
        epoch is a random draw from the whole segment; in date order when ``shuffle`` is off.
        """
        if not shuffle and not cap:
            return list(range(self.n_days))
        perm = torch.randperm(self.n_days, generator=generator, device=generator.device).cpu().numpy()
        if cap and cap < self.n_days:
            perm = perm[:cap]
        return perm.tolist() if shuffle else sorted(perm.tolist())
