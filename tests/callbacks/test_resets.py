"""Periodic resets of the last layers: which layers, with what, and when."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from dqn_lightning import DQN, ConfigError, EnvLoop, ReplayBuffer, replay_dataloader
from dqn_lightning.callbacks import resets
from dqn_lightning.callbacks.resets import PeriodicReset, reset_last_layers, resettable_layers
from dqn_lightning.learner.noisy import NoisyLinear
from tests.helpers import quiet_trainer


def test_the_last_layers_are_redrawn_copied_to_the_target_and_lose_their_adam_state() -> None:
    torch.manual_seed(0)
    model = DQN((4,), 2, hidden_sizes=(8, 8), eval_episodes=0)
    online, target = model.q_network, model.target_network
    assert [name for name, _ in resettable_layers(online)] == ["layers.0", "layers.2", "layers.4"]
    optimizer = torch.optim.Adam(online.parameters(), lr=0.1)
    online(torch.randn(5, 4)).sum().backward()
    optimizer.step()  # every parameter has Adam moments now, and differs from the target
    before = copy.deepcopy(online)
    torch.manual_seed(7)
    expected = torch.nn.Linear(8, 2)  # what the output layer's own initializer draws from this seed
    torch.manual_seed(7)
    assert reset_last_layers(online, target, optimizer, 1) == ["layers.4"]
    last, first = online.layers[4], online.layers[0]
    assert torch.equal(last.weight, expected.weight) and torch.equal(last.bias, expected.bias)
    assert torch.equal(first.weight, before.layers[0].weight)  # the earlier layers are left alone
    assert torch.equal(target.layers[4].weight, last.weight)  # the target's reset layer is the new one
    assert not torch.equal(target.layers[0].weight, first.weight)  # and its other layers as they were
    assert last.weight not in optimizer.state and first.weight in optimizer.state
    optimizer.step()  # the optimizer takes the reset parameters up again


def test_noisy_layers_reset_their_means_and_sigmas() -> None:
    layer = NoisyLinear(4, 3)
    with torch.no_grad():
        layer.weight_sigma.fill_(9.0)
    torch.manual_seed(3)
    reset_last_layers(layer, None, None, 1)
    torch.manual_seed(3)
    assert torch.equal(layer.weight_mu, NoisyLinear(4, 3).weight_mu)
    assert torch.allclose(layer.weight_sigma, torch.full((3, 4), 0.5 / 2.0))  # sigma0 / sqrt(in_features)


def test_resets_fall_every_interval_of_updates_and_resume_their_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = DQN((4,), 2, hidden_sizes=(8,), eval_episodes=0)
    buffer = ReplayBuffer(2_000, (4,), seed=0)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=300, learning_starts=100, seed=0)
    at: list[int] = []

    def spy(online, target, optimizer, count):  # type: ignore[no-untyped-def]
        at.append(model.gradient_step)
        assert online is model.q_network and target is model.target_network and optimizer is not None
        return reset_last_layers(online, target, optimizer, count)

    monkeypatch.setattr(resets, "reset_last_layers", spy)
    reset = PeriodicReset(every=50)
    quiet_trainer(tmp_path, [loop, reset]).fit(model, replay_dataloader(buffer, 16, rounds_per_batch=7))
    # batches of 7 updates: each reset falls at the first batch end past a multiple of 50
    assert model.gradient_step == 200 and at == [56, 105, 154, 200]
    assert reset.state_dict() == {"resets": 4}
    resumed = PeriodicReset(every=50)
    resumed.load_state_dict(reset.state_dict())
    assert resumed.resets == 4
    with pytest.raises(ConfigError, match="reset_interval must be >= 1"):
        PeriodicReset(every=0)
