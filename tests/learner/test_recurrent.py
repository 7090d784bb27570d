"""Recurrent DQN's update by hand: n-step targets inside padded sequences, no loss on burn-in or
padding steps, the sequence priority, the stored start state, and acting that carries each env's state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_lightning.acting.envs import make_vector_env
from dqn_lightning.acting.evaluation import evaluate
from dqn_lightning.acting.memory import ActingMemory
from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.recurrent import RecurrentDQN
from dqn_lightning.learner.recurrent_net import RecurrentQNetwork
from dqn_lightning.learner.sequence_td import masked_sequence_loss, sequence_targets
from dqn_lightning.replay.sequences import SequenceBatch


def test_n_step_targets_stop_at_the_episode_and_the_sequence_end() -> None:
    # rewards 1, 2, 3 then padding; gamma 0.5, 2-step; bootstrap values V(obs_b) = 10 * b
    reward = torch.tensor([[1.0, 2.0, 3.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    valid = torch.tensor([[True, True, True, False], [True, True, True, True]])
    values = torch.tensor([[0.0, 10.0, 20.0, 30.0, 40.0]] * 2)
    terminated = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    target = sequence_targets(reward, terminated, valid, values, gamma=0.5, n_step=2)
    # row 0 ends terminated at step 2: t0 = 1 + .5*2 + .25*V2; t1 = 2 + .5*3 (cut); t2 = 3 (cut); t3 padding
    # row 1 runs to the sequence's end: t2 = 3 + .5*4 + .25*V4; t3 = 4 + .5*V4 (one step left)
    assert target.tolist() == [[2.0 + 5.0, 3.5, 3.0, 0.0], [7.0, 2.0 + 1.5 + 7.5, 5.0 + 10.0, 4.0 + 20.0]]
    cut = sequence_targets(reward, torch.zeros(2, 4), valid, values, gamma=0.5, n_step=2)
    assert cut[0].tolist() == [7.0, 3.5 + 7.5, 3.0 + 15.0, 0.0]  # a time-limit end bootstraps from obs 3


def test_the_sequence_loss_and_priority_cover_the_masked_steps_only() -> None:
    q = torch.tensor([[1.0, 5.0, 2.0, 100.0]])
    target = torch.tensor([[0.0, 2.0, 4.0, 0.0]])
    mask = torch.tensor([[True, True, True, False]])  # deltas 1, 3, -2; the last step is padding
    loss, q_mean, priority = masked_sequence_loss(q, target, mask, None, huber=False, eta=0.9)
    assert loss.item() == pytest.approx((1 + 9 + 4) / 3)
    assert q_mean.item() == pytest.approx(8 / 3)
    assert priority.item() == pytest.approx(0.9 * 3 + 0.1 * 2)  # eta * max + (1 - eta) * mean
    weighted, _, _ = masked_sequence_loss(q, target, mask, torch.tensor([0.5]), huber=False, eta=0.9)
    assert weighted.item() == pytest.approx(0.5 * 14 / 3)


def batch_of(model: RecurrentDQN, rows: int = 3, length: int = 6, seed: int = 0) -> SequenceBatch:
    g = torch.Generator().manual_seed(seed)
    return SequenceBatch(
        obs=torch.randn(rows, length + 1, 4, generator=g),
        action=torch.randint(0, 2, (rows, length), generator=g),
        reward=torch.randn(rows, length, generator=g),
        terminated=torch.zeros(rows, length),
        valid=torch.ones(rows, length, dtype=torch.bool),
        state=torch.randn(rows, model.state_size, generator=g),
        prev_action=torch.tensor([-1, 0, 1][:rows]),
        prev_reward=torch.randn(rows, generator=g),
    )


def model(obs_dim: int = 4, **kwargs: object) -> RecurrentDQN:
    torch.manual_seed(0)
    return RecurrentDQN((obs_dim,), 2, core_size=8, hidden_sizes=(16,), eval_episodes=0, **kwargs)  # type: ignore[arg-type]


def test_burn_in_and_padding_steps_carry_no_loss() -> None:
    dqn = model(burn_in=2, n_step=1)
    batch = batch_of(dqn)._replace(prev_action=torch.tensor([1, 0, 1]))  # none begins its episode
    target = dqn.td_target(batch)
    base = dqn.td_loss(batch, target).loss
    wild = target.clone()
    wild[:, :2] = 1e6  # burn-in steps' targets: never seen by the loss
    assert dqn.td_loss(batch, wild).loss.item() == pytest.approx(base.item())
    padded = batch._replace(valid=torch.tensor([[True] * 4 + [False] * 2] * 3))
    wild_tail = target.clone()
    wild_tail[:, 4:] = 1e6
    assert dqn.td_loss(padded, wild_tail).loss.item() == pytest.approx(dqn.td_loss(padded, target).loss.item())
    moved = target.clone()
    moved[:, 2] += 1.0  # a loss step's target does count
    assert dqn.td_loss(batch, moved).loss.item() != pytest.approx(base.item())
    # and no gradient flows into the burn-in: the loss does not move its observations' encodings
    obs = batch.obs.clone().requires_grad_(True)
    dqn.td_loss(batch._replace(obs=obs), target).loss.backward()
    assert obs.grad is not None
    assert not obs.grad[:, :2].any() and obs.grad[:, 2:6].abs().sum() > 0


def test_a_sequence_that_begins_its_episode_is_learned_from_its_first_step() -> None:
    dqn = model(burn_in=2, n_step=1)
    batch = batch_of(dqn)._replace(prev_action=torch.tensor([-1, 0, 1]))  # row 0 begins its episode
    target = dqn.td_target(batch)
    base = dqn.td_loss(batch, target)
    moved = target.clone()
    moved[0, 0] += 1.0  # its first step counts
    assert dqn.td_loss(batch, moved).td_error[0] != base.td_error[0]
    moved = target.clone()
    moved[1, 0] += 1.0  # another row's burn-in step does not
    assert torch.equal(dqn.td_loss(batch, moved).td_error, base.td_error)
    obs = batch.obs.clone().requires_grad_(True)
    dqn.td_loss(batch._replace(obs=obs), target).loss.backward()
    assert obs.grad is not None and obs.grad[0, :2].abs().sum() > 0 and not obs.grad[1:, :2].any()


def test_the_stored_start_state_is_used_and_zero_state_ignores_it() -> None:
    stored, zero = model(burn_in=0), model(burn_in=0, stored_state=False)
    batch = batch_of(stored)
    target = stored.td_target(batch)
    other_state = batch._replace(state=torch.zeros_like(batch.state))
    assert not torch.allclose(stored.td_loss(batch, target).q_taken, stored.td_loss(other_state, target).q_taken)
    assert torch.equal(zero.td_loss(batch, target).q_taken, zero.td_loss(other_state, target).q_taken)


def test_acting_carries_each_envs_state_and_resets_it_at_an_episode_end() -> None:
    dqn = model()
    memory = ActingMemory(dqn, 2)
    obs = np.ones((2, 4), dtype=np.float32)
    memory.act(obs)
    memory.observe(np.array([1, 0]), np.array([1.0, 2.0]), np.array([False, True]))
    assert memory.prev_action.tolist() == [1, -1] and memory.prev_reward.tolist() == [1.0, 0.0]
    assert np.abs(memory.state[0]).sum() > 0 and not memory.state[1].any()  # env 1 starts afresh
    # the state it keeps is the network's own after that step, from the initial state
    net = dqn.recurrent_network
    _, expected = net.unroll(torch.ones(1, 1, 4), torch.tensor([[-1]]), torch.zeros(1, 1), net.initial_state(1))
    assert np.allclose(memory.state[0], expected[0].detach().numpy())


def test_an_atari_policy_is_fed_rewards_clipped_as_in_training() -> None:
    dqn = RecurrentDQN((4,), 2, core_size=4, eval_episodes=0, env_id="ALE/Pong-v5")
    policy = dqn.policy(2)
    policy.act(np.zeros((2, 4), dtype=np.float32))
    policy.observe(np.array([0, 1]), np.array([7.0, -3.0]), np.array([False, False]))
    assert policy.prev_reward.tolist() == [1.0, -1.0]  # the evaluation env's raw rewards, clipped
    other = model().policy(1)
    other.act(np.zeros((1, 4), dtype=np.float32))
    other.observe(np.array([0]), np.array([7.0]), np.array([False]))
    assert other.prev_reward.tolist() == [7.0]


def test_evaluation_plays_with_memory() -> None:
    dqn = model(obs_dim=3)
    env = make_vector_env("CueRecall-v0", 3)
    returns = evaluate(ActingMemory(dqn, 3), env, seeds=[0, 1, 2, 3])
    env.close()
    assert returns.shape == (4,) and set(returns.tolist()) <= {-1.0, 1.0}


def test_your_own_recurrent_network_and_unsupported_settings() -> None:
    net = RecurrentQNetwork((4,), 2, core="gru", core_size=5)
    dqn = RecurrentDQN((4,), 2, network=net, eval_episodes=0)
    assert dqn.q_network is net and dqn.state_size == 5
    with pytest.raises(ConfigError, match="does not support noisy"):
        RecurrentDQN((4,), 2, noisy=True)
    with pytest.raises(ConfigError, match="lstm or gru"):
        RecurrentDQN((4,), 2, recurrent="rnn")  # type: ignore[arg-type]
