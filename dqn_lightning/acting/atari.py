"""Atari envs with the standard DQN preprocessing, from Gymnasium's wrappers plus two small ones.

`make_atari_env("ALE/Pong-v5", training=True)` gives what the DQN paper trained on: no-op
starts (up to 30), 4 frames per action with the max of the last two, 84x84 grayscale, 4 frames
stacked `(4, 84, 84)` uint8, FIRE pressed at reset for games that wait for it, and for training
only: a lost life ends the episode (the game goes on) and rewards are clipped to their sign.
Evaluation envs (`training=False`) play whole games with raw scores, as reported scores are.
ALE v5 ids keep their sticky actions (repeat probability 0.25, Machado et al. 2018); SB3 and
CleanRL report on the older NoFrameskip-v4 ids, which have none.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TransformReward

from dqn_lightning.errors import ConfigError

FRAME_STACK = 4
GAME_CONTINUES = "game_continues"
"""The reset info key that says a reset continued the game (after a lost life) instead of starting one."""


def is_atari(env_id: str) -> bool:
    """Whether `env_id` names an Arcade Learning Environment game (`ALE/...`)."""
    return env_id.startswith("ALE/")


def register_atari() -> None:
    """Registers the ALE ids with Gymnasium (ale-py ships the ROMs), or says what to install."""
    try:
        import ale_py
    except ImportError:
        raise ConfigError(
            "Atari envs need ale-py: pip install 'dqn-lightning[atari]' (or pip install ale-py)"
        ) from None
    gym.register_envs(ale_py)


def make_atari_env(env_id: str, *, training: bool, render_mode: str | None = None, **ale_kwargs: Any) -> gym.Env:
    """An ALE game with DQN's preprocessing; `training` adds life-loss episodes and reward clipping.
    `ale_kwargs` go to the ALE env (`repeat_action_probability=0.0`: no sticky actions)."""
    register_atari()
    if "frameskip" in ale_kwargs:
        raise ConfigError("frameskip is fixed at 4 by DQN's Atari preprocessing: leave it out of the env arguments")
    # frame skipping and max-pooling happen in AtariPreprocessing, so the ALE itself skips none
    env = gym.make(env_id, frameskip=1, render_mode=render_mode, **ale_kwargs)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True)
    if training:
        env = EpisodicLife(env)
    if "FIRE" in env.unwrapped.get_action_meanings():  # type: ignore[attr-defined]
        env = FireReset(env, after_life_loss=not training)
    if training:
        env = TransformReward(env, _sign)
    return FrameStackObservation(env, FRAME_STACK)


def _sign(reward: SupportsFloat) -> float:
    # module-level, not a lambda, so that async vector envs can pickle the env factory
    return float(np.sign(float(reward)))


def _lives(env: gym.Env) -> int:
    return int(env.unwrapped.ale.lives())  # type: ignore[attr-defined]


class EpisodicLife(gym.Wrapper):
    """A lost life ends the episode (terminated) while the game goes on (training only).

    The next `reset` then continues the game with one no-op step instead of restarting it, so
    the agent learns that losing a life is final without seeing fewer late-game states.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = _lives(self.env)
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Continues the game after a lost life (`info["game_continues"]`: True), else starts a new one."""
        if self.game_over:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(seed=seed, options=options)
            else:
                info = {**info, GAME_CONTINUES: True}
        self.game_over = False
        self.lives = _lives(self.env)
        return obs, info


def restart_games(env: gym.Env) -> None:
    """Makes the next `reset` of `env` start a new game even where a lost life would continue one
    (`EpisodicLife` anywhere in its wrappers): a rebuilt episode replays from a fresh game."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, EpisodicLife):
            env.game_over = True
        env = env.env


class FireReset(gym.Wrapper):
    """Presses FIRE to start games that wait for it (Breakout), at reset and optionally after a lost life.

    In training, a lost life ends the episode, so the reset presses FIRE; evaluation plays whole
    games, so there it is pressed after each lost life (`after_life_loss`), or a policy that
    never learned to serve would stall until the time limit.
    """

    def __init__(self, env: gym.Env, after_life_loss: bool = False) -> None:
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
        if len(meanings) < 3 or meanings[1] != "FIRE":
            raise ConfigError(f"FireReset expects action 1 to be FIRE, got {meanings[:3]}")
        self.after_life_loss = after_life_loss
        self.lives = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        _, reset_info = self.env.reset(seed=seed, options=options)
        for action in (1, 2):  # FIRE, then a move (as in OpenAI Baselines' FireResetEnv)
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, reset_info = self.env.reset(options=options)
                info = reset_info
        self.lives = _lives(self.env)
        # the step's info describes the state returned; the reset's says whether a game goes on
        return obs, {**info, GAME_CONTINUES: True} if reset_info.get(GAME_CONTINUES) else info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = _lives(self.env)
        if self.after_life_loss and 0 < lives < self.lives and not (terminated or truncated):
            obs, fire_reward, terminated, truncated, info = self.env.step(1)
            reward = float(reward) + float(fire_reward)
        self.lives = lives
        return obs, reward, terminated, truncated, info
