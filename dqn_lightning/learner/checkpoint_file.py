"""Reading a saved DQN checkpoint safely: weights-only unpickling, one-line errors for wrong files, and
the class it was saved from (a DQN variant loads as itself)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from dqn_lightning.acting.envs import env_spaces
from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.user_networks import import_class

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


def class_path(cls: type) -> str:
    """`pkg.module.Class`: where a checkpoint's module class is imported from when it is loaded."""
    return f"{cls.__module__}.{cls.__qualname__}"


def saved_class(checkpoint: dict[str, Any], cls: type) -> type:
    """The class to load `checkpoint` as: its recorded `dqn_class` when that is a subclass of `cls`
    (a variant loaded through `DQN.load_from_checkpoint`), else `cls` (which may itself be a
    subclass: a DQN checkpoint loaded into a variant starts it from DQN's weights)."""
    recorded = checkpoint.get("dqn_class")
    if recorded is None or recorded == class_path(cls):
        return cls
    variant = import_class(recorded, "this checkpoint's DQN class", base=torch.nn.Module)
    return variant if issubclass(variant, cls) else cls


def state_hash(checkpoint: str | Path) -> str:
    """sha256 of a checkpoint's weights and buffers, in key order (the file itself holds timestamps)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
