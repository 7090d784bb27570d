from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from conftest import quiet_trainer

from dqn_lightning import DQN, EnvLoop, ReplayBatch, ReplayBuffer, replay_dataloader


class RecordingDQN(DQN):
    """Keeps every loss it computes."""

    def td_loss(self, batch: ReplayBatch) -> tuple[torch.Tensor, torch.Tensor]:
        loss, q = super().td_loss(batch)
        self.__dict__.setdefault("losses", []).append(loss.item())
        return loss, q


def run(tmp_path: Path, seed: int) -> tuple[list[float], list[float]]:
    pl.seed_everything(seed, verbose=False)
    model = RecordingDQN.from_env("CartPole-v1", hidden_sizes=(32,), eval_episodes=0)
    buffer = ReplayBuffer(5_000, (4,), seed=seed)
    loop = EnvLoop(
        "CartPole-v1", buffer, total_timesteps=1_500, learning_starts=200, seed=seed, exploration_fraction=0.5
    )
    quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(buffer, 32))
    return model.losses, list(loop.recent_returns)


def test_same_seed_gives_identical_losses_and_returns(tmp_path: Path) -> None:
    losses_a, returns_a = run(tmp_path, seed=3)
    losses_b, returns_b = run(tmp_path, seed=3)
    assert len(losses_a) == 1_300 and len(returns_a) > 20
    assert losses_a == losses_b
    assert returns_a == returns_b
    losses_c, _ = run(tmp_path, seed=4)
    assert losses_c[:10] != losses_a[:10]  # the seed really matters
