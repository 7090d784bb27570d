"""Checks of the learner's hyperparameters at construction: one-line `ConfigError`s naming the fix."""

from __future__ import annotations

import math

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
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"lr must be a positive finite number, got {lr}")
    if not 0.0 <= gamma <= 1.0:
        raise ConfigError(f"gamma must be in [0, 1], got {gamma}")
    if target_update_interval < 0:
        raise ConfigError(f"target_update_interval must be >= 0 (0 = no target network), got {target_update_interval}")
    if eval_episodes < 0:
        raise ConfigError(f"eval_episodes must be >= 0, got {eval_episodes}")
    if loss not in TD_LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(TD_LOSSES)}, got {loss!r}")
    if not 0.0 < tau <= 1.0:
        raise ConfigError(f"tau must be in (0, 1] (1 = hard copy), got {tau}")
    if max_grad_norm is not None and not (max_grad_norm > 0 and math.isfinite(max_grad_norm)):
        raise ConfigError(f"max_grad_norm must be a positive number or None, got {max_grad_norm}")
    if double and target_update_interval == 0:
        raise ConfigError("double DQN needs a target network: set target_update_interval >= 1")
