"""Checkpoints on an env-step clock, for resuming a crashed run close to where it stopped."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from typing_extensions import override

from dqn_lightning.checkpoints import checkpoint_dir
from dqn_lightning.env_loop import EnvLoop, find_env_loop
from dqn_lightning.errors import ConfigError


class PeriodicCheckpoint(Callback):
    """Saves `periodic-envstepN.ckpt` each time the env-step count passes a multiple of `interval`.

    All are kept, besides `ModelCheckpoint`'s last and best. Needs the `EnvLoop` callback,
    whose env-step count it follows.
    """

    def __init__(self, interval: int) -> None:
        if interval < 1:
            raise ConfigError(f"checkpoint interval must be >= 1 env step, got {interval}")
        self.interval = interval
        self._saved_multiple = 0

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._saved_multiple = _env_loop(trainer).env_steps // self.interval

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        env_steps = _env_loop(trainer).env_steps
        if env_steps // self.interval > self._saved_multiple:
            self._saved_multiple = env_steps // self.interval
            trainer.save_checkpoint(checkpoint_dir(trainer) / f"periodic-envstep{env_steps}.ckpt")


def _env_loop(trainer: pl.Trainer) -> EnvLoop:
    loop = find_env_loop(trainer)
    if loop is None:
        raise RuntimeError("PeriodicCheckpoint counts env steps: add the EnvLoop callback too")
    return loop
