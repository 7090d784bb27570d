from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def quiet_trainer(tmp_path: Path, callbacks: list[pl.Callback], **kwargs: object) -> pl.Trainer:
    """A CPU Trainer with no logger, bar or checkpoints, unless asked for."""
    options: dict[str, object] = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_cartpole_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.ckpt of a 2,000-step CartPole run through train.py, shared by the export and hub tests."""
    import train

    logdir = tmp_path_factory.mktemp("tiny-cartpole")
    flags = ["--total-timesteps", "2000", "--learning-starts", "500", "--eval-episodes", "2", "--quiet"]
    assert train.main([*flags, "--logdir", str(logdir)]) == 0
    return logdir / "CartPole-v1/version_0/checkpoints/last.ckpt"
