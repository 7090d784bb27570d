"""The replay buffer's files beside the checkpoints, so that a resumed run continues exactly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch

from dqn_lightning.checkpoint_paths import checkpoint_dir
from dqn_lightning.errors import ConfigError
from dqn_lightning.replay.buffer import ReplayBuffer

DEFAULT_LIMIT_BYTES = 1 << 30  # save_buffer="auto" saves buffers up to 1 GiB


class ReplayFiles:
    """Writes `replay-envstepN[-rankR].npz` beside each checkpoint and reads it back on resume.

    A checkpoint names its replay file (`file_name`); checkpoints saved at one env step (last and
    best) share one file, and files no checkpoint names any more are deleted.

    Args:
        buffer: the replay buffer to save and restore.
        mode: `always`, `never`, or `auto`: only when the buffer holds at most `limit_bytes`.
        limit_bytes: size limit for `auto`.
    """

    def __init__(
        self,
        buffer: ReplayBuffer,
        mode: Literal["auto", "always", "never"] = "auto",
        limit_bytes: int = DEFAULT_LIMIT_BYTES,
    ) -> None:
        if mode not in ("auto", "always", "never"):
            raise ConfigError(f"save_buffer must be auto, always or never, got {mode!r}")
        self.buffer, self.mode, self.limit_bytes = buffer, mode, limit_bytes

    @property
    def enabled(self) -> bool:
        """Whether checkpoints carry the buffer."""
        return self.mode == "always" or (self.mode == "auto" and self.buffer.nbytes <= self.limit_bytes)

    def file_name(self, env_steps: int, rank: int) -> str | None:
        """The replay file a checkpoint at `env_steps` names (None when buffers are not saved)."""
        if not self.enabled:
            return None
        return f"replay-envstep{env_steps}" + (f"-rank{rank}" if rank > 0 else "") + ".npz"

    def save(self, trainer: pl.Trainer, env_steps: int, rank: int) -> None:
        """Writes this rank's buffer for a checkpoint being saved now (every DDP rank writes its own)."""
        name = self.file_name(env_steps, rank)
        if name is None:
            return
        folder = checkpoint_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        if not path.exists():  # last.ckpt and best-*.ckpt saved at one env step share one file
            self.buffer.save(path)
            prune_replay_files(folder, keep_step=env_steps)

    def load(self, trainer: pl.Trainer, name: str | None) -> bool:
        """Reads the replay file a resumed checkpoint names; False, with the buffer emptied, if it is gone."""
        path = find_replay_file(trainer, name)
        if path is None:
            self.buffer.pos = self.buffer.size = 0
            return False
        try:
            self.buffer.load(path)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        return True


def find_replay_file(trainer: pl.Trainer, name: str | None) -> Path | None:
    """The replay file `name` saved beside the checkpoint being resumed (or in this run's folder), if it exists."""
    if name is None:
        return None
    folders = ([Path(trainer.ckpt_path).parent] if trainer.ckpt_path else []) + [checkpoint_dir(trainer)]
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def prune_replay_files(folder: Path, keep_step: int) -> None:
    """Deletes replay files that no checkpoint in `folder` names by env step, except every rank's
    file of `keep_step`, the checkpoint being saved now.

    Checkpoints other than last.ckpt carry their env step in the file name (envstepN); last.ckpt
    is read for the files it names, since it is written after an evaluation that need not be a
    best, and a later periodic save must not delete its file. Under DDP each rank writes its file
    and prunes while rank 0's .ckpt is not on disk yet: keeping the whole step, not only this
    rank's file, keeps a rank that finishes last from deleting the others' files of the same checkpoint.
    """
    wanted = {step for p in folder.glob("*.ckpt") if (step := envstep_of(p.name)) is not None}
    wanted.add(keep_step)
    for last in folder.glob("last*.ckpt"):
        named = _replay_steps_named_by(last)
        if named is None:  # unreadable (being written without atomic saves?): delete nothing this time
            return
        wanted |= named
    for path in folder.glob("replay-envstep*.npz"):
        step = envstep_of(path.name)
        if step is not None and step not in wanted:
            path.unlink(missing_ok=True)


def _replay_steps_named_by(checkpoint_path: Path) -> set[int] | None:
    """The env steps of the replay files a checkpoint names (every DDP rank's), None if it cannot be read."""
    try:
        # mmap: the weights stay on disk, only the callbacks' small states are read
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False, mmap=True)
    except Exception:
        return None
    names: list[str] = []
    pending: list[Any] = [checkpoint.get("callbacks", {}) if isinstance(checkpoint, dict) else {}]
    while pending:  # EnvLoop's state names its file; under DDP a "ranks" list holds each rank's state
        state = pending.pop()
        if isinstance(state, dict):
            names += [v for k, v in state.items() if k == "buffer_file" and isinstance(v, str)]
            pending += [v for v in state.values() if isinstance(v, (dict, list))]
        elif isinstance(state, list):
            pending += state
    return {step for name in names if (step := envstep_of(name)) is not None}


def envstep_of(name: str) -> int | None:
    """The env step in a checkpoint's or replay file's name (`...envstepN...`), None if it has none."""
    match = re.search(r"envstep(\d+)", name)
    return int(match.group(1)) if match else None
