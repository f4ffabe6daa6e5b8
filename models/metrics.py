"""Loss and early-stopping metrics, computed on the device without a host synchronisation.

Qlib's wrappers evaluate a segment batch by batch (a loss batch of ``batch_size`` samples, or one trading day)
and average the per-batch figures: ``loss_fn`` is the MSE over the finite labels, ``metric_fn`` either minus that
loss or (HIST, IGMTF: ``metric="ic"``) the Pearson correlation of prediction and label over the finite labels.
``group_scores`` computes both for every batch at once from a batch number per sample.
"""

from __future__ import annotations

import torch


def masked_mse(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite labels (0 when none), without a host synchronisation."""
    mask = torch.isfinite(label)
    diff = torch.where(mask, pred - torch.where(mask, label, 0.0), 0.0)
    return diff.square().sum() / mask.sum().clamp_min(1)


def pearson_ic(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of ``pred`` and ``label`` over the finite labels (Qlib's ``metric_fn`` with
    ``metric="ic"``); NaN when it is undefined (fewer than two labels, or a constant side)."""
    mask = torch.isfinite(label)
    x, y = pred[mask], label[mask]
    vx, vy = x - x.mean(), y - y.mean()
    return (vx * vy).sum() / (vx.square().sum().sqrt() * vy.square().sum().sqrt())


def _group_sum(values: torch.Tensor, group: torch.Tensor, n_groups: int) -> torch.Tensor:
    return torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add_(0, group, values)


def group_stats(
    pred: torch.Tensor, label: torch.Tensor, group: torch.Tensor, n_groups: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per group (``[n_groups]`` each): the MSE, whether it has a finite label, the Pearson IC, whether the IC
    is defined; all over the finite labels.

    ``group`` ([n], 0 <= g < n_groups) says which batch (a loss batch, a trading day) each sample is in. The IC
    is undefined with fewer than two labels or a constant prediction or label (Qlib's ``metric_fn`` gives NaN).
    """
    pred = pred.float()
    mask = torch.isfinite(label)
    weight = mask.to(pred.dtype)
    y = torch.where(mask, label, 0.0)
    x = torch.where(mask, pred, 0.0)
    count = _group_sum(weight, group, n_groups)
    has = count > 0
    n = count.clamp_min(1)
    mse = _group_sum((x - y).square() * weight, group, n_groups) / n
    vx = (x - (_group_sum(x, group, n_groups) / n)[group]) * weight
    vy = (y - (_group_sum(y, group, n_groups) / n)[group]) * weight
    scale = _group_sum(vx.square(), group, n_groups).sqrt() * _group_sum(vy.square(), group, n_groups).sqrt()
    ic = _group_sum(vx * vy, group, n_groups) / scale
    defined = (count >= 2) & (scale > 0) & torch.isfinite(ic)
    return mse, has, torch.where(defined, ic, 0.0), defined


def group_scores(
    pred: torch.Tensor, label: torch.Tensor, group: torch.Tensor, n_groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over groups of the per-group MSE and of the per-group IC (``group_stats``); 0-d tensors.

    A group without a finite label is left out of the loss mean, a group with an undefined IC out of the IC mean
    (Qlib would average a NaN in, and its early stopping would never see an improvement again). Each mean is NaN
    when no group counts.
    """
    mse, has, ic, defined = group_stats(pred, label, group, n_groups)
    return torch.where(has, mse, 0.0).sum() / has.sum(), ic.sum() / defined.sum()
