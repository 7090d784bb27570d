from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_cartpole_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.ckpt of a 2,000-step CartPole run through train.py, shared by the export and hub tests."""
    from dqn_lightning import run as train

    logdir = tmp_path_factory.mktemp("tiny-cartpole")
    flags = ["--total-timesteps", "2000", "--learning-starts", "500", "--eval-episodes", "2", "--quiet"]
    assert train.main([*flags, "--logdir", str(logdir)]) == 0
    return logdir / "CartPole-v1/version_0/checkpoints/last.ckpt"
