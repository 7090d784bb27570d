"""Periodic checkpoints: one per interval of env steps, and --keep-checkpoints bounding how many stay."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dqn_lightning.callbacks.checkpointing import PeriodicCheckpoint
from dqn_lightning.errors import ConfigError
from dqn_lightning.replay.replay_files import _replay_steps_named_by
from tests.helpers import run_train


def step_of(path: Path) -> int:
    match = re.search(r"envstep(\d+)", path.name)
    assert match, path
    return int(match.group(1))


def test_keep_checkpoints_leaves_the_newest_periodic_ones_and_only_the_replay_files_checkpoints_name(
    tmp_path: Path,
) -> None:
    flags = ["--env", "CartPole-v1", "--total-timesteps", "1300", "--learning-starts", "100", "--train-freq", "4",
             "--hidden-sizes", "[16]", "--eval-interval", "500", "--eval-episodes", "1", "--checkpoint-interval",
             "200", "--keep-checkpoints", "2", "--save-buffer", "always", "--logdir", "logs", "--quiet"]  # fmt: skip
    result = run_train(*flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    folder = tmp_path / "logs" / "CartPole-v1" / "version_0" / "checkpoints"
    # saves at the first env step past each multiple of 200 (4 env steps a batch, from 100): 200 ... 1200
    assert sorted(step_of(p) for p in folder.glob("periodic-*.ckpt")) == [1000, 1200]
    named = {step_of(p) for p in folder.glob("*envstep*.ckpt")} | _replay_steps_named_by(folder / "last.ckpt")
    assert {step_of(p) for p in folder.glob("replay-*.npz")} == named  # 200 ... 800 went with their checkpoints


def test_keeping_no_periodic_checkpoint_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="keep_checkpoints must be >= 1"):
        PeriodicCheckpoint(200, keep=0)
