"""Tiny deterministic envs whose transitions can be worked out by hand."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.wrappers import FrameStackObservation, TimeLimit


class ChainEnv(gym.Env[np.ndarray, int]):
    """obs = [steps taken in this episode, episode number]; reward 1 per step.

    Action 1 at step >= 2 terminates the episode; wrap in TimeLimit to also truncate.
    """

    observation_space = gym.spaces.Box(-1e6, 1e6, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
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


class FaultyCartPole(CartPoleEnv):
    """CartPole that misbehaves once the `DQN_TEST_FAULT` env var says so, for fault-injection tests.

    `step:N` raises in the N-th step of an instance, `reset:N` in its N-th reset, `nan:N` returns a
    NaN reward from step N on. With `DQN_TEST_FAULT_RANK=R`, only DDP rank R's envs misbehave.
    Every instance is listed in `instances`, to check they were closed.
    """

    instances: ClassVar[list[FaultyCartPole]] = []

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        kind, _, at = os.environ.get("DQN_TEST_FAULT", "none:0").partition(":")
        rank = os.environ.get("LOCAL_RANK", "0")  # set by Lightning's DDP launcher for ranks above 0
        if os.environ.get("DQN_TEST_FAULT_RANK", rank) != rank:
            kind = "none"
        self.fault, self.at = kind, int(at)
        self.steps = self.resets = 0
        self.closed = False
        FaultyCartPole.instances.append(self)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
        self.resets += 1
        if self.fault == "reset" and self.resets == self.at:
            raise RuntimeError(f"injected failure in reset #{self.resets}")
        return super().reset(seed=seed, options=options)

    def step(self, action):  # type: ignore[no-untyped-def]
        self.steps += 1
        if self.fault == "step" and self.steps == self.at:
            raise RuntimeError(f"injected failure in step #{self.steps}")
        obs, reward, terminated, truncated, info = super().step(action)
        if self.fault == "nan" and self.steps >= self.at:
            reward = float("nan")
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self.closed = True
        super().close()


class NoArgumentsEnv(ChainEnv):
    """A hand-written env whose constructor takes no arguments at all (no render_mode)."""

    def __init__(self) -> None:
        super().__init__()


class BrokenEnv(ChainEnv):
    def __init__(self) -> None:
        raise ValueError("the simulator config file sim.cfg is missing")


class DictObsEnv(ChainEnv):
    observation_space = gym.spaces.Dict({"position": gym.spaces.Box(-1, 1, shape=(2,))})  # type: ignore[assignment]


class MaskedDictObsEnv(ChainEnv):
    """ChainEnv in PettingZoo's style: `{"observation", "action_mask"}`; action 1 (which ends the
    episode) is illegal at the first step of each episode."""

    observation_space = gym.spaces.Dict(  # type: ignore[assignment]
        {"observation": ChainEnv.observation_space, "action_mask": gym.spaces.MultiBinary(2)}
    )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = super().reset(seed=seed, options=options)
        return {"observation": obs, "action_mask": self._mask()}, info

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = super().step(action)
        return {"observation": obs, "action_mask": self._mask()}, reward, terminated, truncated, info

    def _mask(self) -> np.ndarray:
        return np.array([1, 0 if self.t == 0 else 1], dtype=np.int8)


class TupleObsEnv(ChainEnv):
    # a sequence part has no flat vector form (a tuple of discrete parts is flattened to one-hots)
    observation_space = gym.spaces.Tuple((gym.spaces.Discrete(3), gym.spaces.Sequence(gym.spaces.Discrete(2))))  # type: ignore[assignment]


class MultiDiscreteActionEnv(ChainEnv):
    """Actions as MultiDiscrete([2, 3]): DQN acts in the 6 combinations (`RavelledActions`)."""

    action_space = gym.spaces.MultiDiscrete([2, 3])  # type: ignore[assignment]


class MultiBinaryActionEnv(ChainEnv):
    action_space = gym.spaces.MultiBinary(3)  # type: ignore[assignment]


class SameReturnEnv(ChainEnv):
    """ChainEnv that never terminates: with its time limit every episode returns the same, whatever the policy."""

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        return self._obs(), 1.0, False, False, {}


# usable from the command line as --env tests.toy_envs:dqn-test/<Name>-v0 with tests/ on PYTHONPATH
gym.register("dqn-test/FaultyCartPole-v0", entry_point=FaultyCartPole, max_episode_steps=500)
gym.register("dqn-test/NoArguments-v0", entry_point=NoArgumentsEnv, max_episode_steps=20)
gym.register("dqn-test/Broken-v0", entry_point=BrokenEnv)
gym.register("dqn-test/DictObs-v0", entry_point=DictObsEnv)
gym.register("dqn-test/TupleObs-v0", entry_point=TupleObsEnv)
gym.register("dqn-test/MaskedDictObs-v0", entry_point=MaskedDictObsEnv, max_episode_steps=6)
gym.register("dqn-test/MultiDiscreteAction-v0", entry_point=MultiDiscreteActionEnv)
gym.register("dqn-test/MultiBinaryAction-v0", entry_point=MultiBinaryActionEnv)
gym.register("dqn-test/SameReturn-v0", entry_point=SameReturnEnv, max_episode_steps=3)


def frame_stacked_chain() -> gym.Env:
    """`chain()` observed as stacks of its last 3 observations: `(3, 2)`, for frame storage."""
    return FrameStackObservation(chain(), 3)
