"""Partially observed tasks for recurrent agents: a CartPole without its velocities, and a cue to
recall after a delay longer than a frame stack; registered with Gymnasium under our ids.

- `CartPoleNoVelocity-v1`: CartPole-v1 observing the cart position and pole angle only `(2,)`:
  the velocities must be inferred from consecutive observations (two stacked frames or memory).
- `CueRecall-v0`: a cue (one of two) shown at the first step, `delay` blank steps, then a question:
  naming the cue earns +1, the other action -1 (random play: 0). A frame stack of k frames sees
  the cue only if k > delay + 1, so with the default delay of 8 a stack of 4 plays at chance.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

CUE_RECALL = "CueRecall-v0"
CARTPOLE_NO_VELOCITY = "CartPoleNoVelocity-v1"


class CueRecall(gym.Env[np.ndarray, np.int64]):
    """Observation `(3,)` float32: [the cue is 0, the cue is 1, answer now]; 2 actions.

    Step 0 shows the cue; steps 1 .. delay show zeros; step delay + 1 asks (`[0, 0, 1]`), and the
    action taken there ends the episode with +1 if it names the cue, else -1. Other steps' actions
    do nothing and earn 0. Episodes last delay + 2 steps.
    """

    observation_space = gym.spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, delay: int = 8, render_mode: str | None = None) -> None:
        if delay < 0:
            raise ValueError(f"CueRecall needs delay >= 0, got {delay}")
        self.delay, self.render_mode = delay, render_mode
        self.cue, self.t = 0, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.cue, self.t = int(self.np_random.integers(2)), 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.t == self.delay + 1:  # the question: the action is the answer
            reward = 1.0 if int(action) == self.cue else -1.0
            return np.zeros(3, dtype=np.float32), reward, True, False, {}
        self.t += 1
        return self._obs(), 0.0, False, False, {}

    def _obs(self) -> np.ndarray:
        obs = np.zeros(3, dtype=np.float32)
        if self.t == 0:
            obs[self.cue] = 1.0
        elif self.t == self.delay + 1:
            obs[2] = 1.0
        return obs


class PositionsOnly(gym.ObservationWrapper):
    """CartPole's observation without the velocities: `[x, theta]` `(2,)` float32."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        low, high = env.observation_space.low, env.observation_space.high  # type: ignore[attr-defined]
        self.observation_space = gym.spaces.Box(low[[0, 2]], high[[0, 2]], dtype=np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        return np.asarray(observation, dtype=np.float32)[[0, 2]]


def cartpole_no_velocity(**kwargs: Any) -> gym.Env:
    """CartPole-v1 (500-step time limit) observing positions only."""
    return PositionsOnly(gym.make("CartPole-v1", **kwargs))


def register_partial_obs() -> None:
    """Registers our partially observed envs' ids with Gymnasium (once)."""
    if CUE_RECALL not in gym.registry:
        gym.register(CUE_RECALL, entry_point="dqn_lightning.acting.partial_obs:CueRecall")
    if CARTPOLE_NO_VELOCITY not in gym.registry:
        gym.register(CARTPOLE_NO_VELOCITY, entry_point="dqn_lightning.acting.partial_obs:cartpole_no_velocity")
