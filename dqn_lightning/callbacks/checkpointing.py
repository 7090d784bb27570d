"""The run's checkpoints: atomic writes, the best and last files, periodic ones, and finding the newest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.callbacks import Checkpoint, ModelCheckpoint
from typing_extensions import override

from dqn_lightning.acting.env_loop import EnvLoop, find_env_loop
from dqn_lightning.checkpoint_paths import checkpoint_dir
from dqn_lightning.errors import ConfigError
from dqn_lightning.private_api import validates_after_this_batch
from dqn_lightning.replay.replay_files import envstep_of, prune_replay_files


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file and renames it into place.

    A crash or kill during a save leaves the previous file whole, never a truncated one.
    Use as `Trainer(plugins=[AtomicCheckpointIO()])`.
    """

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        os.replace(tmp, path)


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
        # the key a plain ModelCheckpoint with these settings has: Lightning matches callback states
        # by this key, so a checkpoint saved by a ModelCheckpoint resumes its best score and best file
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)  # the best, when this evaluation is one
        self._save_last(trainer)
        prune_after_saves(trainer)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._save_last(trainer)
        prune_after_saves(trainer)

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


class PeriodicCheckpoint(Checkpoint):
    """Saves `periodic-envstepN.ckpt` each time the env-step count passes a multiple of `interval`.

    Kept besides `ModelCheckpoint`'s last and best: all of them, or the newest `keep` (older ones
    are deleted with their replay files, which for an Atari buffer are about 0.7 GB each). Needs
    the `EnvLoop` callback, whose env-step count it follows.

    When an evaluation runs after the same training batch, the save waits for it: Lightning
    resumes a checkpoint taken before a due validation by skipping that validation, so the
    resumed run would lose the evaluation and its best score. Lightning runs `Checkpoint`
    callbacks last, in the order given: list this one after `BestAndLastCheckpoint` (as
    `train.py` does) and the file also holds that evaluation's best.
    """

    def __init__(self, interval: int, keep: int | None = None) -> None:
        if interval < 1:
            raise ConfigError(f"checkpoint interval must be >= 1 env step, got {interval}")
        if keep is not None and keep < 1:
            raise ConfigError(f"keep_checkpoints must be >= 1 periodic checkpoint (or null: all), got {keep}")
        self.interval, self.keep = interval, keep
        self._saved_multiple = 0
        self._waiting = False  # a save due at this batch waits for the evaluation after it

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        later = trainer.checkpoint_callbacks[trainer.checkpoint_callbacks.index(self) + 1 :]
        if any(isinstance(callback, ModelCheckpoint) for callback in later):
            raise ConfigError(
                "PeriodicCheckpoint is listed before a ModelCheckpoint: list it after, so that its files hold "
                "each evaluation's best (Lightning runs checkpoint callbacks in the order given)"
            )

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._saved_multiple = _env_loop(trainer).env_steps // self.interval
        self._waiting = False

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._waiting:  # the evaluation it waited for did not run (a stop came between): save now
            self._save(trainer)
        env_steps = _env_loop(trainer).env_steps
        if env_steps // self.interval > self._saved_multiple:
            self._saved_multiple = env_steps // self.interval
            if validates_after_this_batch(trainer):
                self._waiting = True
            else:
                self._save(trainer)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._waiting:
            self._save(trainer)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._waiting:
            self._save(trainer)

    def _save(self, trainer: pl.Trainer) -> None:
        self._waiting = False
        folder = checkpoint_dir(trainer)
        trainer.save_checkpoint(folder / f"periodic-envstep{_env_loop(trainer).env_steps}.ckpt")
        if self.keep is not None and trainer.is_global_zero:
            periodic = sorted(folder.glob("periodic-envstep*.ckpt"), key=lambda p: envstep_of(p.name) or 0)
            for path in periodic[: -self.keep]:
                path.unlink(missing_ok=True)
        prune_after_saves(trainer)


def prune_after_saves(trainer: pl.Trainer) -> None:
    """Deletes the replay files no checkpoint on disk names any more, once this step's saves are done.

    Each replay file is pruned as it is written, but a checkpoint that stops naming one is
    replaced (last.ckpt) or deleted (the old best, old periodic ones) after that: without this
    pass the last of those files would stay until the next save, which a finished run never makes.
    """
    loop = find_env_loop(trainer)
    dirpath = checkpoint_dir(trainer)
    if loop is not None and trainer.is_global_zero and dirpath.is_dir():
        prune_replay_files(dirpath, keep_step=loop.env_steps)


def _env_loop(trainer: pl.Trainer) -> EnvLoop:
    loop = find_env_loop(trainer)
    if loop is None:
        raise RuntimeError("PeriodicCheckpoint counts env steps: add the EnvLoop callback too")
    return loop


def check_logdir(logdir: str | Path, need_bytes: int = 0) -> None:
    """Fails early, with a `ConfigError`, when `logdir` cannot take this run's logs and checkpoints.

    Creates the folder and writes (then deletes) a probe file; `need_bytes` is the disk space the
    run is expected to write (checkpoints and replay files), checked against what is free.
    """
    path = Path(logdir)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
        if free < need_bytes:  # checked before creating anything
            raise ConfigError(
                f"--logdir {logdir} has {free / 2**20:.0f} MiB free but this run needs about "
                f"{need_bytes / 2**20:.0f} MiB for checkpoints and replay files: free some space, pick another "
                "folder, or pass --save-buffer never"
            )
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            f"cannot write to --logdir {logdir} ({err.strerror or err}): pick a folder you can write to"
        ) from None


def latest_checkpoint(logdir: str | Path = "lightning_logs", name: str = "*.ckpt", flag: str = "--resume") -> Path:
    """The newest checkpoint file matching `name` under `logdir`'s runs (for `--resume last`,
    `--checkpoint last`); `flag` names the option in the error when there is none."""
    checkpoints = sorted(Path(logdir).glob(f"**/checkpoints/{name}"), key=lambda p: p.stat().st_mtime)
    if not checkpoints:
        raise ConfigError(f"{flag} last: no {name} checkpoint under {logdir}/; train first or pass a .ckpt path")
    return checkpoints[-1]


def chosen_checkpoint(choice: str | Path, logdir: str | Path = "lightning_logs") -> Path:
    """`--checkpoint`'s file: the newest run's last.ckpt for `last`, its best evaluation's for `best`,
    else the path given."""
    if str(choice) == "last":
        return latest_checkpoint(logdir, name="last.ckpt", flag="--checkpoint")
    if str(choice) == "best":
        return latest_checkpoint(logdir, name="best-envstep*.ckpt", flag="--checkpoint")
    return Path(choice)
