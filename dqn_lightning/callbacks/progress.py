"""Progress: a bar in a terminal that shows the episode, its score, the average score and epsilon;
plain lines everywhere else (`PlainProgress`).

The bar counts env steps (not Lightning's "Epoch 0" batches), and each evaluation prints one
line above it (env step, mean ± std, best so far) instead of a validation sub-bar.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm
from typing_extensions import override

from dqn_lightning.acting.env_loop import find_env_loop


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

    @property
    @override
    def train_description(self) -> str:
        return "train"

    @override
    def init_train_tqdm(self) -> Tqdm:
        loop = find_env_loop(self.trainer)
        if loop is None or loop.total_timesteps is None:
            return super().init_train_tqdm()
        # one endless epoch: the bar counts env steps against the budget from its first line, not
        # "Epoch 0" batches (Lightning's own bar, with a total and a unit). A resumed run starts the
        # bar at its restored step, so the rate and time left count only this process's steps.
        return Tqdm(
            desc=self.train_description,
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
            total=loop.total_timesteps,
            initial=min(loop.env_steps, loop.total_timesteps),
            unit=" env steps",
        )

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loop = find_env_loop(trainer)
        if loop is None or loop.total_timesteps is None:
            super().on_train_epoch_start(trainer, pl_module)

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

    # evaluation is one line, not a bar: Lightning's validation bars stay closed
    @override
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass

    @override
    def on_validation_batch_start(self, *args: Any, **kwargs: Any) -> None:
        pass

    @override
    def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
        pass

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        line = eval_line(trainer, pl_module)
        if line is not None:
            self.train_progress_bar.write(line)

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


class PlainProgress(pl.Callback):
    """Progress as plain lines, for output that is not a terminal (a file, `nohup`, a CI log).

    A bar's carriage-return redraws pile up in a file as one endless line; this prints one line
    every `every` env steps (default: a twentieth of the budget, at least 1,000) with the env step,
    episodes, the last 30 episodes' mean return, epsilon and env steps/s since the last line, and
    each evaluation's line as the bar does.
    """

    def __init__(self, every: int | None = None) -> None:
        self.every = every
        self._next = 0
        self._since: tuple[float, int] = (0.0, 0)

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loop = find_env_loop(trainer)
        if loop is None:
            return
        if self.every is None:
            self.every = max(1_000, (loop.total_timesteps or 0) // 20)
        self._next = (loop.env_steps // self.every + 1) * self.every
        self._since = (time.monotonic(), loop.env_steps)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loop = find_env_loop(trainer)
        if loop is None or not trainer.is_global_zero or self.every is None:
            return
        if loop.env_steps < self._next and not loop.done:
            return
        self._next = (loop.env_steps // self.every + 1) * self.every
        now, steps = time.monotonic(), loop.env_steps
        rate = (steps - self._since[1]) / max(now - self._since[0], 1e-9)
        self._since = (now, steps)
        budget = f"/{loop.total_timesteps:,}" if loop.total_timesteps is not None else ""
        recent = f"{loop.mean_return(30):.1f}" if loop.recent_returns else "-"
        print(
            f"env step {steps:,}{budget} | episodes {loop.episodes} | return (last 30) {recent} | "
            f"epsilon {loop.epsilon:.3f} | {rate:,.0f} env steps/s",
            flush=True,
        )

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        line = eval_line(trainer, pl_module)
        if line is not None:
            print(line, flush=True)


def eval_line(trainer: pl.Trainer, pl_module: pl.LightningModule) -> str | None:
    """The line an evaluation prints: env step, mean ± std, best so far (None where nothing to say)."""
    history = getattr(pl_module, "eval_history", None)
    if not trainer.is_global_zero or not history:
        return None
    last, best = history[-1], max(row["return_mean"] for row in history)
    return (
        f"eval @ {last['env_steps']:,} env steps: {last['return_mean']:.1f} ± {last['return_std']:.1f} "
        f"(best {best:.1f})"
    )


# known third-party messages a training run has no use for: Lightning's own deprecation of its
# pytree helper, the model summary's note that it sizes bf16 weights as 32-bit, and the CSV
# logger's and ModelCheckpoint's notes on a folder that already has files (resumed runs)
KNOWN_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r"Precision .* is not supported by the model summary.*",
    r"Experiment logs directory .* exists and is not empty.*",  # CSV beside TensorBoard, or resumed: it appends
    r"Checkpoint directory .* exists and is not empty.*",  # a resumed run writes to its own folder
)


def quiet_lightning_messages() -> None:
    """Hides Lightning's info lines (device report, advertising tips), MLflow's database set-up lines
    and the known warnings above."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
