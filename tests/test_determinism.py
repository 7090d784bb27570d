from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import quiet_trainer

from dqn_lightning import DQN, EnvLoop, ReplayBuffer, bellman_mse, module, replay_dataloader


def run(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list[float], list[float]]:
    losses: list[float] = []

    def recording_mse(q_taken: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = bellman_mse(q_taken, target)
        losses.append(loss.item())
        return loss

    monkeypatch.setattr(module, "bellman_mse", recording_mse)
    pl.seed_everything(seed, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(32,), eval_episodes=0)
    buffer = ReplayBuffer(5_000, (4,), seed=seed)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=1_500, learning_starts=200, seed=seed,
                   exploration_fraction=0.5)  # fmt: skip
    quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(buffer, 32))
    return losses, list(loop.recent_returns)


def test_same_seed_gives_identical_losses_and_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    losses_a, returns_a = run(tmp_path, 3, monkeypatch)
    losses_b, returns_b = run(tmp_path, 3, monkeypatch)
    assert len(losses_a) == 1_300 and len(returns_a) > 20
    assert losses_a == losses_b
    assert returns_a == returns_b
    losses_c, _ = run(tmp_path, 4, monkeypatch)
    assert losses_c[:10] != losses_a[:10]  # the seed really matters
