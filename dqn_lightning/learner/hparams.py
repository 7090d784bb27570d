"""Checks of the learner's hyperparameters at construction: one-line `ConfigError`s naming the fix."""

from __future__ import annotations

from dqn_lightning.bounds import check_bounds
from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.td import TD_LOSSES


def check_hparams(
    lr: float,
    gamma: float,
    target_update_interval: int,
    eval_episodes: int,
    loss: str,
    tau: float,
    max_grad_norm: float | None,
    double: bool,
) -> None:
    """Rejects impossible values and combinations before any network is built."""
    check_bounds(
        lr=lr, gamma=gamma, target_update_interval=target_update_interval, eval_episodes=eval_episodes, tau=tau,
        max_grad_norm=max_grad_norm,
    )  # fmt: skip
    if loss not in TD_LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(TD_LOSSES)}, got {loss!r}")
    if double and target_update_interval == 0:
        raise ConfigError("double DQN needs a target network: set target_update_interval >= 1")
