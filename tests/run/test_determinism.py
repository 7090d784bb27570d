from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from dqn_lightning import DQN, EnvLoop, ReplayBuffer, bellman_mse, replay_dataloader
from tests.helpers import quiet_trainer


def run(tmp_path: Path, seed: int) -> tuple[list[float], list[float]]:
    pl.seed_everything(seed, verbose=False)
    model = DQN.from_env("CartPole-v1", hidden_sizes=(32,), eval_episodes=0)
    losses: list[float] = []

    def recording_mse(q_taken: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = bellman_mse(q_taken, target)
        losses.append(loss.item())
        return loss

    model.value_head.loss_fn = recording_mse
    buffer = ReplayBuffer(5_000, (4,), seed=seed)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=1_500, learning_starts=200, seed=seed,
                   exploration_fraction=0.5)  # fmt: skip
    quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(buffer, 32))
    return losses, list(loop.recent_returns)


def test_same_seed_gives_identical_losses_and_returns(tmp_path: Path) -> None:
    losses_a, returns_a = run(tmp_path, 3)
    losses_b, returns_b = run(tmp_path, 3)
    assert len(losses_a) == 1_300 and len(returns_a) > 20
    assert losses_a == losses_b
    assert returns_a == returns_b
    losses_c, _ = run(tmp_path, 4)
    assert losses_c[:10] != losses_a[:10]  # the seed really matters


def test_deterministic_flag_turns_on_deterministic_kernels_and_keeps_cpu_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from dqn_lightning.run import build, parse_config

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    flags = ["--total-timesteps", "600", "--learning-starts", "200", "--eval-episodes", "0", "--seed", "3"]
    weights = {}
    try:
        for deterministic in (False, True):
            run = build(parse_config([*flags, "--deterministic", str(deterministic), "--logdir", str(tmp_path)]))
            run.fit()
            weights[deterministic] = [p.detach().clone() for p in run.model.q_network.parameters()]
            assert torch.are_deterministic_algorithms_enabled() == deterministic
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)
    assert all(map(torch.equal, weights[False], weights[True]))  # the CPU kernels were deterministic already
