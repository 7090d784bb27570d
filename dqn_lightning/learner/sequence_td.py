"""The pure pieces of the sequence loss (R2D2): n-step targets inside a padded sequence, and the
masked loss with its sequence priority; tested with hand-made tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sequence_targets(
    reward: Tensor, terminated: Tensor, valid: Tensor, values: Tensor, gamma: float, n_step: int
) -> Tensor:
    """n-step targets `(batch, length)` of every step of padded sequences.

    Step t sums the rewards of steps t .. b-1 and bootstraps from `values[:, b]`, the value of
    observation b, where `b = min(t + n_step, last + 1)` and `last` is the row's last valid step:
    the sum stops at the episode's end and at the sequence's end, never crossing into padding.
    A bootstrap from the observation after a terminated last step is cut; one after a time-limit
    cut or the sequence's end is not. Padding steps get 0.

    `reward`, `terminated` `(batch, length)`; `valid` `(batch, length)` bool, True on a prefix of
    each row; `values` `(batch, length + 1)`: each observation's bootstrap value (max or Double).
    """
    length = reward.shape[1]
    last = valid.sum(dim=1) - 1  # (batch,)
    steps = torch.arange(length, device=reward.device)
    boot = torch.minimum(steps[None, :] + n_step, (last + 1)[:, None])  # (batch, length), in 1 .. length
    padded = F.pad(reward * valid, (0, n_step))
    returns = torch.zeros_like(reward)
    for k in range(n_step):  # n_step terms: a loop over the window, not over time
        returns = returns + gamma**k * padded[:, k : k + length] * (steps[None, :] + k < boot)
    ends_terminal = terminated.gather(1, last[:, None]) > 0  # the last valid step ended the episode
    cut = (boot == (last + 1)[:, None]) & ends_terminal
    discount = torch.pow(torch.full_like(reward, gamma), (boot - steps[None, :]).to(reward.dtype))
    target = returns + discount * (~cut) * values.gather(1, boot)
    return target * valid


def masked_sequence_loss(
    q_taken: Tensor, target: Tensor, mask: Tensor, weight: Tensor | None, huber: bool, eta: float
) -> tuple[Tensor, Tensor, Tensor]:
    """The loss of sequences, each sequence's mean Q(s, a), and its priority, over the `mask`ed steps.

    Each sequence's loss is the mean over its masked steps of the squared (or Huber) TD error;
    the batch's loss their mean, weighted by `weight` `(batch,)` (prioritized replay). A
    sequence's priority is `eta * max |delta| + (1 - eta) * mean |delta|` (R2D2, eta 0.9).
    `q_taken`, `target`, `mask` `(batch, time)`; returns `(loss, q_mean (batch,), priority (batch,))`.
    """
    delta = q_taken - target
    per_step = F.smooth_l1_loss(q_taken, target, reduction="none") if huber else delta**2
    mask = mask.to(q_taken.dtype)
    count = mask.sum(dim=1).clamp(min=1.0)
    per_sequence = (per_step * mask).sum(dim=1) / count
    loss = (per_sequence * weight).mean() if weight is not None else per_sequence.mean()
    size = delta.detach().abs() * mask
    priority = eta * size.max(dim=1).values + (1.0 - eta) * size.sum(dim=1) / count
    q_mean = (q_taken.detach() * mask).sum(dim=1) / count
    return loss, q_mean, priority
