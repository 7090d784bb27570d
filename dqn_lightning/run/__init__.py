"""A training run from settings: the settings dataclass, presets and flags, and the public builder."""

from dqn_lightning.run.build import Run, build, build_buffer, build_env_loop, build_module, main, train
from dqn_lightning.run.config import parse_config, parse_settings
from dqn_lightning.run.train_config import TrainConfig

__all__ = [
    "Run",
    "TrainConfig",
    "build",
    "build_buffer",
    "build_env_loop",
    "build_module",
    "main",
    "parse_config",
    "parse_settings",
    "train",
]
