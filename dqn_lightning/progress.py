"""A progress bar that shows what the seed tutorial printed: episode, score, average, epsilon."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from typing_extensions import override

from dqn_lightning.env_loop import find_env_loop


class EpisodeProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar, counting env steps against the budget, with the episode statistics.

    Args:
        min_seconds: least wall time between redraws of the training bar.
        process_position: as in `TQDMProgressBar`, for several bars in one terminal.
    """

    def __init__(self, min_seconds: float = 0.5, process_position: int = 0) -> None:
        super().__init__(process_position=process_position)
        self.min_seconds = min_seconds
        self._last_draw = 0.0

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        loop = find_env_loop(trainer)
        if loop is not None and loop.total_timesteps is not None:
            self.train_progress_bar.reset(total=loop.total_timesteps)
            self.train_progress_bar.initial = 0
            self.train_progress_bar.unit = " env steps"

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loop = find_env_loop(trainer)
        if loop is None or loop.total_timesteps is None:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        # redrawn by wall time, not every N batches: a batch may be 1 or 256 env steps
        now = time.monotonic()
        if now - self._last_draw >= self.min_seconds or loop.done:
            self._last_draw = now
            self.train_progress_bar.n = min(loop.env_steps, loop.total_timesteps)
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            self.train_progress_bar.refresh()

    @override
    def get_metrics(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        loop = find_env_loop(trainer)
        if loop is not None and loop.recent_returns:
            metrics.update(
                episode=loop.episodes,
                score=f"{loop.recent_returns[-1]:.1f}",
                avg30=f"{loop.mean_return(30):.1f}",
                eps=f"{loop.epsilon:.3f}",
            )
        return metrics
