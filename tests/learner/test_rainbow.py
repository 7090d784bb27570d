"""Rainbow's parts through the learner and train.py: noisy exploration, noise per update, every option."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_lightning import DQN, EnvLoop, PrioritizedReplayBuffer, replay_dataloader
from dqn_lightning import run as train
from dqn_lightning.learner.noisy import NoisyLinear
from dqn_lightning.learner.value_heads import Categorical, ExpectedValue, Quantile

TINY = ["--total-timesteps", "600", "--learning-starts", "200", "--train-freq", "4", "--gradient-steps", "4",
        "--eval-interval", "300", "--eval-episodes", "2", "--quiet"]  # fmt: skip


def test_noisy_nets_explore_with_epsilon_zero_and_evaluate_greedily() -> None:
    torch.manual_seed(1)
    model = DQN.from_env("CartPole-v1", noisy=True, hidden_sizes=(16,), eval_episodes=0)
    obs = np.full((1, 4), 0.1, dtype=np.float32)
    model.train()
    acting = {int(model.act(obs, epsilon=0.0)[0]) for _ in range(100)}
    assert acting == {0, 1}  # the noise alone varies the action for one observation
    model.eval()
    assert len({int(model.act(obs, epsilon=0.0)[0]) for _ in range(100)}) == 1  # mean weights: one action


def test_each_update_sees_fresh_noise_and_priorities_come_from_the_heads_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import quiet_trainer

    torch.manual_seed(0)
    model = DQN.from_env("CartPole-v1", noisy=True, value_head="c51", hidden_sizes=(16,), eval_episodes=0,
                         target_update_interval=10)  # fmt: skip
    buffer = PrioritizedReplayBuffer(2_000, (4,), seed=0, beta_steps=400)
    loop = EnvLoop("CartPole-v1", buffer, total_timesteps=400, learning_starts=200, train_freq=4, seed=0,
                   eps_start=0.0, eps_end=0.0)  # fmt: skip
    noise: list[torch.Tensor] = []
    priorities: list[tuple[np.ndarray, np.ndarray]] = []
    original_loss = model.td_loss
    layer = model.q_network.layers[0]
    assert isinstance(layer, NoisyLinear)

    def spy_loss(batch, target):  # type: ignore[no-untyped-def]
        noise.append(layer.eps_out.clone())
        loss, q_taken, priority = original_loss(batch, target)
        head = model.value_head
        with torch.no_grad():  # by hand: the cross-entropy of the projected target, row by row
            logits = model.q_network(batch.obs)[torch.arange(len(batch.action)), batch.action]
            expected = -(target * torch.log_softmax(logits, -1)).sum(-1)
        assert isinstance(head, Categorical)
        torch.testing.assert_close(priority, expected)
        return loss, q_taken, priority

    monkeypatch.setattr(model, "td_loss", spy_loss)
    monkeypatch.setattr(buffer, "update_priorities", lambda slot, td: priorities.append((slot, td)))
    quiet_trainer(tmp_path, [loop]).fit(model, replay_dataloader(buffer, 16, gradient_steps=4))
    assert len(noise) == model.gradient_step > 100
    assert all(not torch.equal(a, b) for a, b in itertools.pairwise(noise))  # fresh for every update
    assert priorities and all((td >= 0).all() for _, td in priorities)  # cross-entropies, not signed TD errors


@pytest.mark.parametrize(
    ("flags", "head", "noisy"),
    [
        (["--distributional", "c51", "--atoms", "21", "--v-min", "-50", "--v-max", "50"], Categorical, False),
        (["--distributional", "qr", "--quantiles", "16", "--prioritized"], Quantile, False),
        (["--noisy", "--double"], ExpectedValue, True),
        (["--rainbow"], Categorical, True),
        (["--rainbow", "--distributional", "qr", "--no-noisy"], Quantile, False),
    ],
)
def test_every_option_trains_through_train_py_and_loads_back(
    tmp_path: Path, flags: list[str], head: type, noisy: bool
) -> None:
    assert train.main([*flags, *TINY, "--logdir", str(tmp_path)]) == 0
    model = DQN.load_from_checkpoint(tmp_path / "CartPole-v1/version_0/checkpoints/last.ckpt")
    assert isinstance(model.value_head, head)
    assert any(isinstance(m, NoisyLinear) for m in model.q_network.modules()) == noisy
    assert model.act(np.zeros((3, 4), dtype=np.float32)).shape == (3,)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--distributional", "c51", "--v-min", "1", "--v-max", "1"],
            r"C51's support needs v_min below v_max, got 1.0",
        ),
        (["--distributional", "c51", "--atoms", "1"], r"--atoms must be >= 2, got 1"),
        (["--quantiles", "8"], r"--quantiles only applies to --distributional qr"),
        (["--distributional", "qr", "--v-max", "5"], r"--v-max only applies to --distributional c51"),
        (["--distributional", "qr", "--quantiles", "0"], r"--quantiles must be >= 1, got 0"),
        (["--distributional", "c51", "--q-network", "x.Y"], r"--distributional and --noisy shape our own networks"),
        (["--distributional", "c52"], r"argument --distributional: invalid choice"),
    ],
)
def test_conflicting_settings_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert train.main([*flags, *TINY, "--logdir", str(tmp_path / "logs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "logs").exists()


def test_rainbow_switch_is_overridable_and_noisy_turns_epsilon_off_unless_set() -> None:
    from dqn_lightning.run.config import parse_settings

    config, note = parse_settings(["--rainbow", "--n-step", "5"])
    assert (config.double, config.dueling, config.prioritized, config.noisy) == (True, True, True, True)
    assert (config.n_step, config.distributional, config.per_alpha) == (5, "c51", 0.5)
    assert (config.eps_start, config.eps_end) == (0.0, 0.0) and "noisy nets explore" in note
    config, _ = parse_settings(["--noisy", "--eps-start", "0.5"])
    assert (config.eps_start, config.eps_end) == (0.5, parse_settings([])[0].eps_end)  # the user's epsilon stays


def test_lunarlander_returns_exceed_the_rainbow_presets_support_as_its_comment_says() -> None:
    """The preset's C51 support clips on purpose (wider ones learned slower, see the README): this pins
    the fact its comment states, that a good landing's discounted returns-to-go pass v_max (about 165)."""
    import gymnasium as gym
    from gymnasium.envs.box2d.lunar_lander import heuristic

    from dqn_lightning.run.config import parse_config

    config = parse_config(["--preset", "lunarlander-rainbow"])
    env = gym.make("LunarLander-v3")
    returns_to_go: list[float] = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        rewards: list[float] = []
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(heuristic(env.unwrapped, obs))
            rewards.append(float(reward))
            done = terminated or truncated
        assert sum(rewards) > 200  # Gymnasium's heuristic lander lands
        g = 0.0
        for r in reversed(rewards):
            g = r + config.gamma * g
            returns_to_go.append(g)
    assert (config.v_min, config.v_max) == (-100.0, 100.0)
    assert 150 < max(returns_to_go) < 200 and min(returns_to_go) > -200
