"""A recurrent policy as a standalone file: state in, state out.

The file takes `obs` `(batch, *obs_shape)`, `prev_action` `(batch,)` int64 (-1 before an episode's
first step), `prev_reward` `(batch,)` float32 and `state` `(batch, state_size)` float32 (zeros at an
episode's start), and returns the greedy `action` `(batch,)`, the `q_values` `(batch, n_actions)`
and the `state_out` to feed back with the next observation. `check_recurrent_export` plays the env
with the file's own states and compares its actions, Q-values and states with PyTorch's.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dqn_lightning.acting.envs import make_vector_env
from dqn_lightning.learner.recurrent import RecurrentDQN

INPUTS = ("obs", "prev_action", "prev_reward", "state")
OUTPUTS = ("action", "q_values", "state_out")


class RecurrentGreedyPolicy(nn.Module):
    """A frozen float32 copy of the recurrent online network: one step, (action, Q-values, next state)."""

    def __init__(self, model: RecurrentDQN) -> None:
        super().__init__()
        self.q_network = copy.deepcopy(model.q_network).float().cpu().eval().requires_grad_(False)

    def forward(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor, state: Tensor) -> tuple[Tensor, ...]:
        q, state_out = self.q_network.unroll(  # type: ignore[operator]
            obs.unsqueeze(1), prev_action.unsqueeze(1), prev_reward.unsqueeze(1), state
        )
        return q[:, 0].argmax(dim=1), q[:, 0], state_out


def example_inputs(model: RecurrentDQN, obs_shape: tuple[int, ...], obs_dtype: str) -> tuple[Tensor, ...]:
    """Inputs of batch 2 for tracing: what the file will be fed."""
    return (
        torch.zeros(2, *obs_shape, dtype=getattr(torch, obs_dtype)),
        torch.full((2,), -1, dtype=torch.int64),
        torch.zeros(2),
        torch.zeros(2, model.state_size),
    )


def check_recurrent_export(
    run: Any, model: RecurrentDQN, observations: int, seed: int, tie: float
) -> tuple[int, int, int, float]:
    """(observations, same actions, ties, largest |Q| or state difference) from playing the env with
    the file's states, half the actions random; the module is fed the same states. A tie: another
    action whose PyTorch Q-value is within `tie` of the best."""
    env = make_vector_env(model.hparams["env_id"], num_envs=8, env_kwargs=model.hparams.get("env_kwargs"))
    rng = np.random.default_rng(seed)
    state = model.initial_state(8)
    prev_action, prev_reward = np.full(8, -1, dtype=np.int64), np.zeros(8, dtype=np.float32)
    same = ties = seen = 0
    worst = 0.0
    net = model.eval().recurrent_network
    try:
        obs, _ = env.reset(seed=[seed * 1000 + i for i in range(8)])
        while seen < observations:
            actions, q_file, state_file = run(np.ascontiguousarray(obs), prev_action, prev_reward, state)
            step_obs, step_action, step_reward = (torch.as_tensor(x)[:, None] for x in (obs, prev_action, prev_reward))
            with torch.no_grad():
                q, state_torch = net.unroll(step_obs, step_action, step_reward, torch.from_numpy(state))
            q_torch = q[:, 0].float().numpy()
            best = q_torch.argmax(axis=1)
            same += int((actions == best).sum())
            picked = q_torch[np.arange(len(obs)), actions]
            ties += int(((actions != best) & (q_torch.max(axis=1) - picked <= tie)).sum())
            worst = max(
                worst, float(np.abs(q_file - q_torch).max()), float(np.abs(state_file - state_torch.numpy()).max())
            )
            seen += len(obs)
            played = np.where(rng.random(8) < 0.5, rng.integers(model.n_actions, size=8), actions)
            obs, reward, terminated, truncated, _ = env.step(played)
            state, prev_action, prev_reward = state_file.copy(), played.astype(np.int64), reward.astype(np.float32)
            if (ended := terminated | truncated).any():
                obs, _ = env.reset(options={"reset_mask": ended})
                state[ended], prev_action[ended], prev_reward[ended] = 0.0, -1, 0.0
    finally:
        env.close()
    return seen, same, ties, worst
