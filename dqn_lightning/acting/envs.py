"""Building and checking Gymnasium envs: one place that knows which envs DQN can handle."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import FrameStackObservation

from dqn_lightning.acting.atari import is_atari, make_atari_env, restart_games
from dqn_lightning.acting.flat_spaces import one_hot_if_discrete
from dqn_lightning.acting.minatar import is_minatar, make_minatar_env
from dqn_lightning.acting.partial_obs import register_partial_obs
from dqn_lightning.errors import ConfigError

register_partial_obs()  # CueRecall-v0, CartPoleNoVelocity-v1

EnvFactory = Callable[[], gym.Env]


@dataclass(frozen=True)
class EnvSpaces:
    """What the network and buffer need to know about an env."""

    obs_shape: tuple[int, ...]
    obs_dtype: np.dtype
    n_actions: int


def make_env(env_id: str, render_mode: str | None = None, *, training: bool = False, **env_kwargs: Any) -> gym.Env:
    """`gym.make(env_id, **env_kwargs)` with a one-line `ConfigError` for unknown ids, arguments the
    env does not take, and unsupported spaces (`env_kwargs`: e.g. `repeat_action_probability=0.0`
    for an ALE game without sticky actions, `max_episode_steps=...`).

    Atari ids (`ALE/...`) get DQN's standard preprocessing (`atari.make_atari_env`); `training`
    selects its training-only parts (life-loss episodes, clipped rewards). Other envs ignore it.
    MinAtar ids (`MinAtar/...`) get channels-first uint8 frames (`minatar.make_minatar_env`).
    `render_mode` reaches the env's constructor only when given: many hand-written envs take no
    such argument. `frame_stack=k` in `env_kwargs` is ours, not the env's: the last k observations
    stacked `(k, *obs_shape)` (the frame-stacked baseline of a partially observed task). POPGym ids
    (`popgym-...`) import `popgym` (`pip install 'dqn-lightning[popgym]'`), which registers them.
    """
    frame_stack = int(env_kwargs.pop("frame_stack", 0) or 0)
    if frame_stack and (is_atari(env_id) or frame_stack < 1):
        raise ConfigError(f"frame_stack {frame_stack}: Atari envs stack 4 frames already; elsewhere give a count >= 1")
    if env_id.startswith("popgym-"):
        _import_popgym()
    try:
        if is_atari(env_id):
            env = make_atari_env(env_id, training=training, render_mode=render_mode, **env_kwargs)
        elif is_minatar(env_id):
            env = make_minatar_env(env_id, render_mode=render_mode, **env_kwargs)
        else:
            kwargs: dict[str, Any] = {"render_mode": render_mode} if render_mode is not None else {}
            env = gym.make(env_id, **kwargs, **env_kwargs)
    except gym.error.DependencyNotInstalled as err:
        raise ConfigError(f"env {env_id!r} needs a package that is not installed: {err}") from None
    except gym.error.Error as err:
        raise ConfigError(
            f"unknown env id {env_id!r} ({err}); list the registered ids with "
            "`python -c 'import gymnasium; gymnasium.pprint_registry()'`"
        ) from None
    except ConfigError:
        raise
    except (ImportError, TypeError, ValueError, AttributeError) as err:  # a missing package, a broken creator
        reason = " ".join(str(err).split())[:200]
        hint = "install the missing package" if isinstance(err, ImportError) else "check its constructor and arguments"
        raise ConfigError(f"env {env_id!r} could not be built ({type(err).__name__}: {reason}); {hint}") from None
    env = one_hot_if_discrete(env)
    if frame_stack:
        env = FrameStackObservation(env, frame_stack)
    check_spaces(env.observation_space, env.action_space, env_id)
    return env


def _import_popgym() -> None:
    try:
        import popgym  # noqa: F401  # registers the popgym-... ids
    except ImportError:
        raise ConfigError("POPGym envs need the popgym package: pip install 'dqn-lightning[popgym]'") from None


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


def env_spaces(env_id: str, **env_kwargs: Any) -> EnvSpaces:
    """Builds the env once (with `env_kwargs`) to read its spaces (for sizing the network and buffer),
    then closes it."""
    env = make_env(env_id, **env_kwargs)
    try:
        return check_spaces(env.observation_space, env.action_space, env_id)
    finally:
        env.close()


class ReplayableEpisode(gym.Wrapper):
    """Lets a vector env rebuild each sub-env's episode in progress, in place, sync or async.

    `replay_episode(segments)` is called on every sub-env at once (`VectorEnv.call`); each
    takes its own entry `segments[i]`: (reset seed, actions) pairs, replayed in order from a
    new game. Usually one pair, the episode in progress; an Atari training env, whose episodes
    end at a lost life while the game goes on, has one per episode of the game in progress.
    Gymnasium envs draw all randomness from the reset seed, so this restores their state exactly.
    """

    def __init__(self, env: gym.Env, index: int) -> None:
        super().__init__(env)
        self.index = index
        self._mask: np.ndarray | None = None  # the last info's action mask (see action_mask)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._mask = info.get("action_mask")
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._mask = info.get("action_mask")
        return obs, reward, terminated, truncated, info

    def action_mask(self) -> np.ndarray | None:
        """The legal actions of the current state, as the env last reported them (None: it does not)."""
        return self._mask

    def replay_episode(self, segments: list[list[tuple[int, list[int]]]]) -> np.ndarray:
        restart_games(self.env)  # the first reset starts the game afresh, as it did when first played
        obs = None
        for seed, actions in segments[self.index]:
            obs, _ = self.reset(seed=seed)
            for action in actions:
                obs, *_ = self.step(action)
        if obs is None:
            raise ValueError(f"no episode to replay for sub-env {self.index}")
        return obs


def make_vector_env(
    env: str | EnvFactory,
    num_envs: int = 1,
    vector: Literal["sync", "async"] = "sync",
    *,
    training: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
) -> SyncVectorEnv | AsyncVectorEnv:
    """`num_envs` copies in a vector env that never resets by itself.

    The caller resets finished sub-envs (`reset(seed=..., options={"reset_mask": ended})`), so
    every `step` is a real transition, the observation it returns is the true last state of a
    finished episode, and each episode starts from a seed the caller chose and can replay
    (`call("replay_episode", ...)`, see `ReplayableEpisode`). `async` runs each env in its own
    subprocess: worth it when one env step costs more than the inter-process round trip.
    `training` builds env ids as training envs, with `env_kwargs` for their constructor (see `make_env`).
    """
    if vector not in ("sync", "async"):
        raise ConfigError(f"vector must be sync or async, got {vector!r}")
    kwargs = dict(env_kwargs or {})
    if kwargs and not isinstance(env, str):
        raise ConfigError("env_kwargs go to an env id's constructor: pass them to your own env factory instead")
    factories = [functools.partial(_replayable, env, i, training, kwargs) for i in range(num_envs)]
    if vector == "sync":
        vec: SyncVectorEnv | AsyncVectorEnv = SyncVectorEnv(factories, autoreset_mode=AutoresetMode.DISABLED)
    else:
        vec = AsyncVectorEnv(factories, autoreset_mode=AutoresetMode.DISABLED)
    check_spaces(vec.single_observation_space, vec.single_action_space, _name(env))
    return vec


def _replayable(env: str | EnvFactory, index: int, training: bool, env_kwargs: dict[str, Any]) -> gym.Env:
    # module-level (not a lambda) so that async workers can unpickle it
    return ReplayableEpisode(
        make_env(env, training=training, **env_kwargs) if isinstance(env, str) else one_hot_if_discrete(env()), index
    )


def _name(env: str | EnvFactory) -> str:
    return env if isinstance(env, str) else getattr(env, "__name__", "the env")
