"""The optimizer as a setting: a name and its options, checked when the module is built.

Plain data (a name and a dict of numbers) rather than an optimizer object, so that a checkpoint's
hyperparameters rebuild it with `DQN.load_from_checkpoint` alone and load weights-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from dqn_lightning.bounds import check_bounds
from dqn_lightning.errors import ConfigError

# the options each optimizer takes, beyond lr (torch's names)
OPTIMIZER_OPTIONS: dict[str, frozenset[str]] = {
    "adam": frozenset({"eps"}),
    "rmsprop": frozenset({"eps", "alpha", "centered"}),
}


def check_optimizer(name: str, options: Mapping[str, float | bool]) -> None:
    """Raises a one-line `ConfigError` for an unknown optimizer or an option it does not take."""
    if name not in OPTIMIZER_OPTIONS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_OPTIONS)}")
    foreign = sorted(set(options) - OPTIMIZER_OPTIONS[name])
    if foreign:
        owners = [other for other, known in OPTIMIZER_OPTIONS.items() if foreign[0] in known]
        fix = f"add --optimizer {owners[0]}" if owners else "remove it"
        raise ConfigError(f"optimizer option {foreign[0]!r} does not apply to {name}: {fix}")
    check_bounds(optimizer_eps=options.get("eps"), rmsprop_alpha=options.get("alpha"))


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    name: str,
    lr: float,
    options: Mapping[str, float | bool] | None = None,
    fused: bool = False,
) -> torch.optim.Optimizer:
    """`torch.optim.Adam` (the fused kernel when `fused`) or `torch.optim.RMSprop` with `options`."""
    options = dict(options or {})
    check_optimizer(name, options)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, fused=fused or None, **options)  # type: ignore[arg-type]
    return torch.optim.RMSprop(params, lr=lr, **options)  # type: ignore[arg-type]
