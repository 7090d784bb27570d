"""The Q-learning update as pure functions on tensors, testable with hand-made numbers."""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor

from dqn_lightning.bounds import check_bounds
from dqn_lightning.errors import ConfigError


class TDLoss(NamedTuple):
    """What `DQN.td_loss` returns for one minibatch."""

    loss: Tensor  # () the loss one gradient step minimises
    q_taken: Tensor  # (batch,) Q(s, a) of the taken actions, for the log (train/q_mean)
    # (batch,) the per-sample error; prioritized replay takes its magnitude as the new priority
    td_error: Tensor


def legal_q(q: Tensor, mask: Tensor | None) -> Tensor:
    """`q` `(batch, n_actions)` with illegal actions (mask False) at -inf, so max and argmax skip them.

    A row without any legal action (a terminal state may say so) keeps all its values: its
    bootstrap is cut by `terminated` anyway, and -inf there would turn the target into NaN.
    """
    if mask is None:
        return q
    legal = mask | ~mask.any(dim=1, keepdim=True)
    return q.masked_fill(~legal, float("-inf"))


def td_target(
    reward: Tensor, terminated: Tensor, next_q: Tensor, gamma: float | Tensor, next_mask: Tensor | None = None
) -> Tensor:
    """Bellman target `r + gamma * (1 - terminated) * max_a next_q[a]`, shape `(batch,)`.

    `next_q` is `(batch, n_actions)` from the target network (or the online network when no
    target network is kept). Only `terminated` cuts the bootstrap: a transition cut by a time
    limit (truncated) still bootstraps, because the state it reached is not terminal.
    For n-step returns, `reward` is the discounted k-step sum and `gamma` the tensor
    `gamma ** k` `(batch,)`. `next_mask` `(batch, n_actions)` bool: the next state's legal
    actions (action masks); the max runs over those alone.
    """
    return reward + gamma * (1.0 - terminated) * legal_q(next_q, next_mask).max(dim=1).values


def double_td_target(
    reward: Tensor,
    terminated: Tensor,
    next_q_target: Tensor,
    next_q_online: Tensor,
    gamma: float | Tensor,
    next_mask: Tensor | None = None,
) -> Tensor:
    """Double DQN target: the online network picks the next action, the target network values it.

    `r + gamma * (1 - terminated) * next_q_target[argmax_a next_q_online[a]]`, shape `(batch,)`;
    with `next_mask`, the online network picks among the legal actions.
    """
    picked = legal_q(next_q_online, next_mask).argmax(dim=1, keepdim=True)
    return reward + gamma * (1.0 - terminated) * next_q_target.gather(1, picked).squeeze(1)


def q_of_actions(q: Tensor, action: Tensor) -> Tensor:
    """Q(s, a) for the taken actions: `(batch, n_actions)`, `(batch,)` int64 -> `(batch,)`."""
    return q.gather(1, action.long().unsqueeze(1)).squeeze(1)


def bellman_mse(q_taken: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean squared TD error; `target` must carry no gradient (semi-gradient Q-learning).

    `weight` `(batch,)` scales each row's error (importance weights of prioritized replay).
    """
    if weight is None:
        return F.mse_loss(q_taken, target)
    return (weight * (q_taken - target) ** 2).mean()


def bellman_huber(q_taken: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Huber TD loss (quadratic within 1 of the target, linear beyond), as in the Nature DQN."""
    if weight is None:
        return F.smooth_l1_loss(q_taken, target)
    return (weight * F.smooth_l1_loss(q_taken, target, reduction="none")).mean()


TD_LOSSES = {"mse": bellman_mse, "huber": bellman_huber}


def check_td_settings(
    lr: float,
    gamma: float,
    target_update_interval: int,
    eval_episodes: int,
    loss: str,
    tau: float,
    max_grad_norm: float | None,
    double: bool,
) -> None:
    """Rejects impossible learner settings before any network is built (ranges: `bounds.BOUNDS`)."""
    check_bounds(
        lr=lr, gamma=gamma, target_update_interval=target_update_interval, eval_episodes=eval_episodes, tau=tau,
        max_grad_norm=max_grad_norm,
    )  # fmt: skip
    if loss not in TD_LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(TD_LOSSES)}, got {loss!r}")
    if double and target_update_interval == 0:
        raise ConfigError("double DQN needs a target network: set target_update_interval >= 1")
