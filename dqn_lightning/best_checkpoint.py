"""The run's two checkpoints: the best greedy policy, and `last.ckpt` refreshed at every evaluation."""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from typing_extensions import override


class BestAndLastCheckpoint(ModelCheckpoint):
    """Keeps `best-envstepN.ckpt` (the top `eval/return_mean`) and a `last.ckpt` from the newest evaluation.

    Lightning 2.6's `save_last=True` rewrites `last.ckpt` only beside a new best, so a run killed
    on a plateau resumed from its last best, maybe 100k env steps back. Here `ModelCheckpoint`
    keeps the best and this class writes `last.ckpt` itself, through public APIs only: after
    every evaluation, and at the end of training (also when evaluation is off). Being a
    `ModelCheckpoint`, it keeps Lightning's order: checkpoint callbacks run last, after
    `EnvLoop` has stepped. Keyword arguments override the defaults (`save_last=False`: no last).
    """

    def __init__(self, **kwargs: Any) -> None:
        options: dict[str, Any] = {
            "monitor": "eval/return_mean",
            "mode": "max",
            "save_top_k": 1,
            # "step" is the env step here: the evaluation logs it as the x-axis of its metrics
            "filename": "best-envstep{step:.0f}",
            "auto_insert_metric_name": False,
            "enable_version_counter": False,  # a resumed run overwrites its files, no -v1 copies
        } | kwargs
        self.keep_last = bool(options.pop("save_last", True))
        super().__init__(**options)
        self._last_saved_step = 0  # as ModelCheckpoint: nothing to save before the first step

    @property
    @override
    def state_key(self) -> str:
        # the key a plain ModelCheckpoint with these settings has: checkpoints written before this
        # class existed (or by a user's ModelCheckpoint) resume their best score and best file
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)  # the best, when this evaluation is one
        self._save_last(trainer)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._save_last(trainer)

    def _save_last(self, trainer: pl.Trainer) -> None:
        if (
            not self.keep_last
            or self.dirpath is None
            or getattr(trainer, "fast_dev_run", False)  # as ModelCheckpoint: no files in a dev run
            or trainer.sanity_checking
            or trainer.state.fn != "fit"
            or trainer.global_step == self._last_saved_step
        ):
            return
        # every DDP rank calls save_checkpoint (each writes its replay file), rank 0 writes the .ckpt
        path = os.path.join(self.dirpath, self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)
        self.last_model_path = path  # before saving: the callback's state in the file names it
        trainer.save_checkpoint(path, self.save_weights_only)
        self._last_saved_step = trainer.global_step
