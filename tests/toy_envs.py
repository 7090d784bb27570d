"""Tiny deterministic envs whose transitions can be worked out by hand."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit


class ChainEnv(gym.Env[np.ndarray, int]):
    """obs = [steps taken in this episode, episode number]; reward 1 per step.

    Action 1 at step >= 2 terminates the episode; wrap in TimeLimit to also truncate.
    """

    observation_space = gym.spaces.Box(-1e6, 1e6, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self) -> None:
        self.t = 0
        self.episode = -1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        self.episode += 1
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        terminated = bool(action == 1 and self.t >= 2)
        return self._obs(), 1.0, terminated, False, {}

    def _obs(self) -> np.ndarray:
        return np.array([self.t, self.episode], dtype=np.float32)


def chain(max_steps: int = 4) -> gym.Env:
    """ChainEnv that is truncated after `max_steps` steps."""
    return TimeLimit(ChainEnv(), max_episode_steps=max_steps)
