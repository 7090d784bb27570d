"""Reading checkpoints safely: weights-only unpickling, and one-line errors for wrong files."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from typing_extensions import override

from dqn_lightning.envs import env_spaces
from dqn_lightning.errors import ConfigError

REQUIRED_HPARAMS = ("obs_shape", "n_actions", "hidden_sizes", "gamma")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint with `weights_only=True` (no code from the file runs) and checks it is ours."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} not found: pass the path of a .ckpt file written by scripts/train.py")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, disallowed globals, ...
        reason = " ".join(str(err).split())[:160]
        raise ConfigError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {reason}); "
            "pass a .ckpt file written by scripts/train.py"
        ) from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or any(key not in hparams for key in REQUIRED_HPARAMS) or not state:
        raise ConfigError(f"{path} is a file torch can read, but not a dqn_lightning DQN checkpoint")
    if not any(key.startswith("q_network.") for key in state):
        raise ConfigError(f"{path} holds no Q-network weights: not a dqn_lightning DQN checkpoint")
    return checkpoint


def check_env_matches(hparams: dict[str, Any], env_id: str, path: str | Path = "the checkpoint") -> None:
    """Raises `ConfigError` unless `env_id` has the observation and action sizes the network was built for."""
    spaces = env_spaces(env_id)
    saved_obs, saved_actions = tuple(hparams["obs_shape"]), int(hparams["n_actions"])
    if spaces.obs_shape != saved_obs or spaces.n_actions != saved_actions:
        raise ConfigError(
            f"{path} was trained for observations {saved_obs} and {saved_actions} actions "
            f"({hparams.get('env_id')}), but {env_id} has {spaces.obs_shape} and {spaces.n_actions}: "
            "use the env it was trained on"
        )


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


def checkpoint_dir(trainer: pl.Trainer) -> Path:
    """Where this run's checkpoints (and the replay files beside them) go."""
    dirpath = getattr(trainer.checkpoint_callback, "dirpath", None)
    return Path(dirpath) if dirpath else Path(trainer.default_root_dir) / "checkpoints"


def resume_hint(trainer: pl.Trainer) -> str:
    """Names the newest checkpoint of this run and how to continue from it (for fault messages)."""
    folder = checkpoint_dir(trainer)
    saved = sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    if not saved:
        return "no checkpoint was written yet (--checkpoint-interval N writes one every N env steps)"
    return f"the last checkpoint is {saved[-1]}: continue with --resume last"


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


def latest_checkpoint(logdir: str | Path) -> Path:
    """The newest checkpoint file of the newest run under `logdir` (for `--resume last`)."""
    checkpoints = sorted(Path(logdir).glob("**/checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not checkpoints:
        raise ConfigError(f"--resume last: no checkpoint under {logdir}/; train first or pass a .ckpt path")
    return checkpoints[-1]


def find_replay_file(trainer: pl.Trainer, name: str | None) -> Path | None:
    """The replay file `name` saved beside the checkpoint being resumed (or in this run's folder), if it exists."""
    if name is None:
        return None
    folders = ([Path(trainer.ckpt_path).parent] if trainer.ckpt_path else []) + [checkpoint_dir(trainer)]
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def prune_replay_files(folder: Path, keep: Path) -> None:
    """Deletes replay files that no checkpoint in `folder` names by env step, except `keep`.

    Checkpoints other than last.ckpt carry their env step in the file name (envstepN).
    """
    wanted = {int(m.group(1)) for p in folder.glob("*.ckpt") if (m := re.search(r"envstep(\d+)", p.name))}
    for path in folder.glob("replay-envstep*.npz"):
        match = re.search(r"envstep(\d+)", path.name)
        if path != keep and match and int(match.group(1)) not in wanted:
            path.unlink(missing_ok=True)
