"""Ending a run early: Ctrl-C without losing work (`GracefulInterrupt`), or once it scores well enough
(`StopAtThreshold`)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from typing_extensions import override

from dqn_lightning.checkpoint_paths import checkpoint_dir


class GracefulInterrupt(Callback):
    """Turns SIGINT (Ctrl-C) and SIGTERM into a clean stop that `--resume last` continues exactly.

    The signal only sets a flag; at the end of the current training batch, where the envs, the
    buffer and the counters agree, the callback writes `last.ckpt` (with the replay file beside
    it) and stops the Trainer. `checkpoint` then names the file. A second Ctrl-C aborts at once.
    Under DDP the ranks agree on the stop, so all save together: in `EnvLoop`'s per-batch
    all-reduce (it sets `agreed`, as for any `StopRequest`), or in one of its own without one.
    """

    def __init__(self) -> None:
        self.requested = False
        self.agreed: bool | None = None  # what the ranks agreed at this batch's end (set by EnvLoop)
        self.signal_name: str | None = None
        self.checkpoint: Path | None = None
        self._previous: dict[int, Any] = {}
        self._val_batches: int | float | None = None  # the Trainer's, while an interrupt turns evaluation off

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # asked twice: do not wait for the batch to end
            self._restore()
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():  # signal handlers live there only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        requested = self.requested
        if self.agreed is not None:
            requested, self.agreed = self.agreed, None
        elif trainer.world_size > 1:
            requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
        if requested and self.checkpoint is None:
            self.requested = True
            path = checkpoint_dir(trainer) / "last.ckpt"
            trainer.save_checkpoint(path)
            self.checkpoint = path
            trainer.should_stop = True
            # Lightning evaluates when should_stop is set: an interrupt should not wait for (and log)
            # an evaluation of 20 Atari games at an odd env step; restored at the fit's end
            self._val_batches = trainer.limit_val_batches
            trainer.limit_val_batches = 0

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()
        if self._val_batches is not None:
            trainer.limit_val_batches, self._val_batches = self._val_batches, None

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class StopAtThreshold(Callback):
    """Ends a run once `consecutive` greedy evaluations in a row reach `threshold` (`eval/return_mean`).

    For tables and benchmarks that measure the env steps to a score: the rest of the run is not needed.
    """

    def __init__(self, threshold: float, consecutive: int = 1) -> None:
        self.threshold, self.consecutive = threshold, consecutive
        self.hits = 0

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        mean = trainer.callback_metrics.get("eval/return_mean")
        self.hits = self.hits + 1 if mean is not None and float(mean) >= self.threshold else 0
        if self.hits >= self.consecutive:
            trainer.should_stop = True
