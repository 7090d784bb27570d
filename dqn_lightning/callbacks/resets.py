"""Periodic resets of a network's last layers (Nikishin et al. 2022, "The primacy bias in deep RL"): an
agent that learns from little data overfits its first experience; re-initializing its last layers
every so many updates, while the replay buffer keeps everything, lets it learn again from all of it."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from typing_extensions import override

from dqn_lightning.bounds import check_bounds


def resettable_layers(network: nn.Module) -> list[tuple[str, nn.Module]]:
    """`(name, layer)` of every layer with weights of its own that can re-initialize itself, in order."""
    return [
        (name, module)
        for name, module in network.named_modules()
        if hasattr(module, "reset_parameters") and any(True for _ in module.parameters(recurse=False))
    ]


@torch.no_grad()
def reset_last_layers(
    online: nn.Module, target: nn.Module | None, optimizer: torch.optim.Optimizer | None, count: int
) -> list[str]:
    """Re-initializes the last `count` layers of `online` (their own initializer, torch's global
    generator), copies them into the same layers of `target`, and drops the optimizer's state for
    their parameters (Adam's moments restart from zero). Returns the reset layers' names."""
    chosen = resettable_layers(online)[-count:]
    targets = dict(target.named_modules()) if target is not None else {}
    for name, layer in chosen:
        layer.reset_parameters()  # type: ignore[operator]
        if name in targets:
            for mine, theirs in zip(
                layer.parameters(recurse=False), targets[name].parameters(recurse=False), strict=True
            ):
                theirs.copy_(mine)
        if optimizer is not None:
            for parameter in layer.parameters(recurse=False):
                optimizer.state.pop(parameter, None)
    return [name for name, _ in chosen]


class PeriodicReset(pl.Callback):
    """Resets the last `layers` layers of a `DQN`'s Q-network (and target network) every `every`
    gradient steps, checked at each training batch's end (a batch of many updates resets once at
    its end). The count of resets is saved with the checkpoint, so a resumed run keeps the rhythm.

    Args:
        every: gradient steps between resets.
        layers: how many of the last layers (the output layer: 1; a dueling head has 2).
    """

    def __init__(self, every: int, layers: int = 1) -> None:
        check_bounds(reset_interval=every, reset_layers=layers)
        self.every, self.layers = every, layers
        self.resets = 0

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        due = int(pl_module.gradient_step) // self.every  # type: ignore[arg-type]
        if due <= self.resets:
            return
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        reset_last_layers(pl_module.q_network, pl_module.target_network, optimizer, self.layers)  # type: ignore[arg-type]
        self.resets = due

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"resets": self.resets}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.resets = int(state_dict.get("resets", 0))
