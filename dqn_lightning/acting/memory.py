"""Each env's recurrent state between steps, for a recurrent learner: what `EnvLoop` and evaluation carry."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class RecurrentLearner(Protocol):
    """What acting needs of a recurrent learner (`RecurrentDQN`) beyond `Learner`."""

    @property
    def state_size(self) -> int:
        """Floats per recurrent state."""
        ...

    def initial_state(self, n: int) -> np.ndarray:
        """The state `(n, state_size)` float32 of an episode's start."""
        ...

    def recurrent_act(
        self,
        obs: np.ndarray,
        state: np.ndarray,
        prev_action: np.ndarray,
        prev_reward: np.ndarray,
        epsilon: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Actions `(n,)` and the states after them `(n, state_size)`."""
        ...


class ActingMemory:
    """The recurrent state of each of `n` envs, with the action and reward before it.

    `act` picks actions from the current states; `observe` moves each env on to the state after
    its step, and back to the initial state (previous action -1, reward 0) where its episode
    ended. `state` between the two is the state before the step: what the replay keeps with it.
    Called as a policy (`memory(obs)`, at `epsilon` with `rng`) it plays evaluation episodes and
    the tools' games (see `evaluate`).
    """

    def __init__(
        self,
        learner: RecurrentLearner,
        n: int,
        epsilon: float = 0.0,
        rng: np.random.Generator | None = None,
        clip_rewards: bool = False,
    ) -> None:
        self.learner, self.n, self.epsilon, self.rng = learner, n, epsilon, rng
        # the network's reward input as in training: an Atari training env clips rewards to their sign,
        # the evaluation env does not
        self.clip_rewards = clip_rewards
        self.state = learner.initial_state(n)
        self.prev_action = np.full(n, -1, dtype=np.int64)
        self.prev_reward = np.zeros(n, dtype=np.float32)
        self._next: np.ndarray | None = None

    def act(self, obs: np.ndarray, epsilon: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
        """Actions `(n,)` for the envs' observations `(n, *obs_shape)` from their states."""
        actions, self._next = self.learner.recurrent_act(
            obs, self.state, self.prev_action, self.prev_reward, epsilon, rng
        )
        return actions

    def observe(self, actions: np.ndarray, reward: np.ndarray, ended: np.ndarray) -> None:
        """After the step `act` chose: each env's next state, or the initial one where its episode ended."""
        if self._next is None:
            raise RuntimeError("observe() follows act(): no step was chosen")
        self.state, self._next = self._next, None
        self.prev_action = np.asarray(actions, dtype=np.int64).copy()
        reward = np.sign(reward) if self.clip_rewards else reward
        self.prev_reward = np.asarray(reward, dtype=np.float32).copy()
        if np.any(ended):
            self.reset(np.asarray(ended, dtype=bool))

    def reset(self, which: np.ndarray | None = None) -> None:
        """Back to an episode's start: every env, or those where `which` `(n,)` bool is True."""
        which = np.ones(self.n, dtype=bool) if which is None else which
        self.state[which] = self.learner.initial_state(int(which.sum()))
        self.prev_action[which] = -1
        self.prev_reward[which] = 0.0

    def __call__(self, obs: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        return self.act(obs, self.epsilon, self.rng)

    def state_dict(self) -> dict[str, Any]:
        """The states and previous steps, as tensors (a checkpoint stays weights-only loadable)."""
        return {
            "state": torch.from_numpy(self.state.copy()),
            "prev_action": torch.from_numpy(self.prev_action.copy()),
            "prev_reward": torch.from_numpy(self.prev_reward.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if np.shape(state["state"]) != self.state.shape:
            raise ValueError(f"acting states of shape {np.shape(state['state'])} do not fit {self.state.shape}")
        self.state = np.array(torch.as_tensor(state["state"]).numpy(), dtype=np.float32)
        self.prev_action = np.array(torch.as_tensor(state["prev_action"]).numpy(), dtype=np.int64)
        self.prev_reward = np.array(torch.as_tensor(state["prev_reward"]).numpy(), dtype=np.float32)
