"""The worked variants' targets and losses against numbers worked by hand (docs/variants.md).

A two-state table network gives Q(s0) = [1, 2] and Q(s1) = [0, 1], for the online and the target
network alike (the target is a copy). Transitions: s0 -a0-> s1 with reward 1, one of them terminal.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from dqn_lightning import DQN, ConfigError, ReplayBatch
from dqn_lightning.acting.envs import env_spaces
from dqn_lightning.run import train
from dqn_lightning.run.build import build_module, variant_class
from dqn_lightning.run.config import parse_config
from dqn_lightning.variants import ConservativeDQN, ExpectedSarsa, MunchausenDQN


class Table(nn.Module):
    """Q-values looked up by state index: obs `(batch, 1)` holds 0.0 or 1.0."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Parameter(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q[obs[:, 0].long()]


def batch() -> ReplayBatch:
    s0, s1 = torch.zeros(2, 1), torch.ones(2, 1)
    return ReplayBatch(s0, torch.zeros(2, dtype=torch.long), torch.ones(2), s1, torch.tensor([0.0, 1.0]))


def test_munchausen_target_by_hand() -> None:
    model = MunchausenDQN((1,), 2, network=Table(), gamma=0.5, m_tau=0.5, m_alpha=0.9, m_l0=-1.0, eval_episodes=0)
    # tau * log pi(.|s0) = [-1, 0] - 0.5 * log(1 + e^-2) = [-1.0635, -0.0635]: a0's is clipped to -1
    bonus = 0.9 * -1.0
    # at s1 the soft value sum_a pi (q - tau log pi) is tau * logsumexp(q / tau) = 0.5 * log(1 + e^2)
    soft_next = 0.5 * math.log(1.0 + math.e**2)
    expected = torch.tensor([1.0 + bonus + 0.5 * soft_next, 1.0 + bonus])  # the second row terminal
    torch.testing.assert_close(model.td_target(batch()), expected)
    # unclipped: a1 at s0 gets 0.9 * -0.0635
    one = batch()._replace(action=torch.ones(2, dtype=torch.long))
    torch.testing.assert_close(model.td_target(one)[1], torch.tensor(1.0 - 0.9 * 0.5 * math.log(1 + math.e**-2)))


def test_cql_loss_by_hand() -> None:
    model = ConservativeDQN((1,), 2, network=Table(), cql_alpha=0.5, eval_episodes=0)
    loss, q_taken, td_error = model.td_loss(batch(), torch.tensor([1.5, 1.5]))
    # MSE (1 - 1.5)^2 = 0.25; penalty logsumexp([1, 2]) - Q(s0, a0) = log(e + e^2) - 1
    expected = 0.25 + 0.5 * (math.log(math.e + math.e**2) - 1.0)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    torch.testing.assert_close(q_taken, torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(td_error, torch.tensor([0.5, 0.5]))
    with pytest.raises(ConfigError, match="C51 or QR"):
        ConservativeDQN((1,), 2, value_head="c51", eval_episodes=0)


def test_expected_sarsa_target_by_hand_for_one_and_stacked_minibatches() -> None:
    model = ExpectedSarsa((1,), 2, network=Table(), gamma=0.5, sarsa_epsilon=0.2, eval_episodes=0)
    # at s1, epsilon-greedy with 0.2 over 2 actions: pi = [0.1, 0.9], E Q = 0.9
    expected = torch.tensor([1.0 + 0.5 * 0.9, 1.0])
    torch.testing.assert_close(model.td_target(batch()), expected)
    one = batch()
    stacked = ReplayBatch(*(torch.stack([value, value]) if value is not None else None for value in one))
    torch.testing.assert_close(model.td_target(stacked), torch.stack([expected, expected]))
    # without a loop or a fixed epsilon it is Q-learning: max at s1 is 1
    greedy = ExpectedSarsa((1,), 2, network=Table(), gamma=0.5, eval_episodes=0)
    torch.testing.assert_close(greedy.td_target(batch()), torch.tensor([1.5, 1.0]))


def test_variant_flag_builds_the_class_with_its_arguments_and_refuses_bad_ones_in_one_line() -> None:
    spaces = env_spaces("CartPole-v1")
    model = build_module(parse_config(["--variant", "munchausen", "--variant-args", "{m_tau: 0.05}"]), spaces)
    assert isinstance(model, MunchausenDQN) and model.m_tau == 0.05 and model.hparams["m_tau"] == 0.05
    assert variant_class("dqn_lightning.variants.cql.ConservativeDQN") is ConservativeDQN
    with pytest.raises(ConfigError, match="unknown --variant 'munchhausen'"):
        variant_class("munchhausen")
    with pytest.raises(ConfigError, match="no DQN class"):
        variant_class("torch.nn.Linear")
    with pytest.raises(ConfigError, match="unexpected keyword argument 'm_taux'"):
        build_module(parse_config(["--variant", "munchausen", "--variant-args", "{m_taux: 0.05}"]), spaces)
    with pytest.raises(ConfigError, match="'gamma' is a DQN setting"):
        build_module(parse_config(["--variant", "cql", "--variant-args", "{gamma: 0.5}"]), spaces)
    with pytest.raises(ConfigError, match="--variant-args needs --variant"):
        parse_config(["--variant-args", "{m_tau: 0.05}"])


def test_a_variants_checkpoint_loads_as_that_variant_and_a_missing_class_is_one_line(tmp_path: Path) -> None:
    flags = ["--variant", "munchausen", "--variant-args", "{m_tau: 0.05}", "--total-timesteps", "600",
             "--learning-starts", "200", "--eval-interval", "300", "--eval-episodes", "2", "--quiet"]  # fmt: skip
    summary = train(parse_config([*flags, "--logdir", str(tmp_path)]))
    model = DQN.load_from_checkpoint(summary["last_checkpoint"])
    assert type(model) is MunchausenDQN and model.m_tau == 0.05
    checkpoint = torch.load(summary["last_checkpoint"], weights_only=True)
    checkpoint["dqn_class"] = "nowhere_to_be_found.Missing"
    torch.save(checkpoint, tmp_path / "moved.ckpt")
    with pytest.raises(ConfigError, match="cannot import nowhere_to_be_found for this checkpoint's DQN class"):
        DQN.load_from_checkpoint(tmp_path / "moved.ckpt")
