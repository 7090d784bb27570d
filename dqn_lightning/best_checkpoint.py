"""The run's two checkpoints: the best greedy policy, and `last.ckpt` refreshed at every evaluation."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from typing_extensions import override


class BestAndLastCheckpoint(ModelCheckpoint):
    """Keeps `best-envstepN.ckpt` (the top `eval/return_mean`) and a `last.ckpt` from the newest evaluation.

    Lightning 2.6's `save_last=True` rewrites `last.ckpt` only beside a new best, so a run killed
    on a plateau resumed from its last best, maybe 100k env steps back. Here `last.ckpt` also
    follows every evaluation that is not a new best. Being a `ModelCheckpoint`, it keeps
    Lightning's order (checkpoint callbacks run last, after `EnvLoop` has stepped) and its
    end-of-training save when evaluation is off. Keyword arguments override the defaults.
    """

    def __init__(self, **kwargs: Any) -> None:
        defaults: dict[str, Any] = {
            "monitor": "eval/return_mean",
            "mode": "max",
            "save_top_k": 1,
            "save_last": True,
            # "step" is the env step here: the evaluation logs it as the x-axis of its metrics
            "filename": "best-envstep{step:.0f}",
            "auto_insert_metric_name": False,
            "enable_version_counter": False,  # a resumed run overwrites last.ckpt, no last-v1.ckpt
        }
        super().__init__(**(defaults | kwargs))

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        # a new best saved both files at this step, and then the skip test holds; else only last.
        # The decision reads synced metrics, so every DDP rank takes it alike (saving is collective).
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
