"""Building and checking Gymnasium envs: one place that knows which envs DQN can handle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from dqn_lightning.errors import ConfigError

EnvFactory = Callable[[], gym.Env]


@dataclass(frozen=True)
class EnvSpaces:
    """What the network and buffer need to know about an env."""

    obs_shape: tuple[int, ...]
    obs_dtype: np.dtype
    n_actions: int


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """`gym.make(env_id)` with a one-line `ConfigError` for unknown ids and unsupported spaces."""
    try:
        env = gym.make(env_id, render_mode=render_mode)
    except gym.error.Error as err:
        raise ConfigError(
            f"unknown env id {env_id!r} ({err}); list the registered ids with "
            "`python -c 'import gymnasium; gymnasium.pprint_registry()'`"
        ) from None
    check_spaces(env.observation_space, env.action_space, env_id)
    return env


def check_spaces(observation_space: gym.Space, action_space: gym.Space, env_id: str = "the env") -> EnvSpaces:
    """Returns the spaces' sizes, or raises `ConfigError` if DQN cannot act in them."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"{env_id} has a {type(action_space).__name__} action space; DQN needs a Discrete one "
            "(pick a discrete-action env, or wrap this one to discretize its actions)"
        )
    if not isinstance(observation_space, gym.spaces.Box):
        raise ConfigError(
            f"{env_id} has a {type(observation_space).__name__} observation space; DQN needs a Box "
            "(wrap the env with gymnasium.wrappers.FlattenObservation)"
        )
    return EnvSpaces(tuple(observation_space.shape), np.dtype(observation_space.dtype), int(action_space.n))


def env_spaces(env_id: str) -> EnvSpaces:
    """Builds the env once to read its spaces (for sizing the network and buffer), then closes it."""
    env = make_env(env_id)
    try:
        return check_spaces(env.observation_space, env.action_space, env_id)
    finally:
        env.close()


def make_vector_env(env: str | EnvFactory, num_envs: int = 1) -> SyncVectorEnv:
    """`num_envs` copies in a vector env that never resets by itself.

    The caller resets finished sub-envs (`reset(seed=..., options={"reset_mask": ended})`), so
    every `step` is a real transition, the observation it returns is the true last state of a
    finished episode, and each episode starts from a seed the caller chose and can replay.
    """
    factory: EnvFactory = (lambda: make_env(env)) if isinstance(env, str) else env
    vec = SyncVectorEnv([factory] * num_envs, autoreset_mode=AutoresetMode.DISABLED)
    check_spaces(vec.single_observation_space, vec.single_action_space, _name(vec))
    return vec


def _name(vec: gym.vector.VectorEnv) -> str:
    spec = vec.envs[0].spec if isinstance(vec, SyncVectorEnv) else None
    return spec.id if spec is not None else "the env"
