"""Observation and action spaces made into what DQN takes: a flat float vector (or frames) and one
`Discrete` action space. `make_env` applies `one_hot_if_discrete` to every env it builds."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FlattenObservation, TransformObservation


class OneHotObservation(gym.ObservationWrapper):
    """A `Discrete(n)` observation as a one-hot `(n,)` float32 vector (FrozenLake, Taxi, CliffWalking),
    as SB3 encodes them: a network needs a vector, and the state index itself has no order."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        assert isinstance(env.observation_space, gym.spaces.Discrete)
        self.n, self.start = int(env.observation_space.n), int(env.observation_space.start)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.n,), np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        one_hot = np.zeros(self.n, dtype=np.float32)
        one_hot[int(observation) - self.start] = 1.0
        return one_hot


class MaskInObservation(gym.Wrapper):
    """A `Dict` observation `{"observation": ..., "action_mask": ...}` (PettingZoo's way of giving
    the legal actions) as the plain observation, with the mask moved into `info["action_mask"]`,
    where the env loop, evaluation and play read it."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        assert isinstance(env.observation_space, gym.spaces.Dict)
        self.observation_space = env.observation_space["observation"]

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs["observation"], {**info, "action_mask": np.asarray(obs["action_mask"])}

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return (
            obs["observation"],
            reward,
            terminated,
            truncated,
            {**info, "action_mask": np.asarray(obs["action_mask"])},
        )


def one_hot_if_discrete(env: gym.Env) -> gym.Env:
    """`env` with observations and actions DQN can take: a `{"observation", "action_mask"}` Dict
    unpacked (see `MaskInObservation`), then `Discrete` observations one-hot encoded (see
    `OneHotObservation`), `MultiDiscrete` and `Tuple` ones as their parts' one-hots side by side
    (POPGym's CountRecall, Autoencode), and a `MultiDiscrete` action space as one `Discrete` of
    every combination (POPGym's MineSweeper, Battleship: see `RavelledActions`)."""
    space = env.observation_space
    if isinstance(space, gym.spaces.Dict) and set(space.spaces) == {"observation", "action_mask"}:
        env = MaskInObservation(env)
    if isinstance(env.observation_space, gym.spaces.Discrete):
        env = OneHotObservation(env)
    elif isinstance(env.observation_space, gym.spaces.MultiDiscrete | gym.spaces.Tuple):
        try:
            flat = gym.spaces.utils.flatten_space(env.observation_space)
        except (NotImplementedError, TypeError, ValueError):  # a part with no flat form (Text, Graph): refused below
            flat = None
        if isinstance(flat, gym.spaces.Box):
            box = gym.spaces.Box(flat.low.astype(np.float32), flat.high.astype(np.float32), dtype=np.float32)
            env = TransformObservation(FlattenObservation(env), lambda obs: obs.astype(np.float32), box)
    if isinstance(env.action_space, gym.spaces.MultiDiscrete):
        env = RavelledActions(env)
    return env


class RavelledActions(gym.ActionWrapper):
    """A `MultiDiscrete(nvec)` action space as `Discrete(prod(nvec))`: action k is the k-th combination
    in row-major order (`np.unravel_index`)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.nvec = tuple(int(n) for n in env.action_space.nvec.ravel())  # type: ignore[attr-defined]
        self.action_space = gym.spaces.Discrete(int(np.prod(self.nvec)))

    def action(self, action: Any) -> np.ndarray:
        return np.array(np.unravel_index(int(action), self.nvec), dtype=np.int64)
