"""MinAtar (Young & Tian 2019): five Atari games on 10x10 frames, made to study pixel DQN on a CPU.

`make_minatar_env("MinAtar/Breakout-v1")` registers the ids with Gymnasium (the `minatar`
package does not do it by itself on Gymnasium 1.x) and turns its channel-last boolean frames
`(10, 10, C)` into the layout every image observation has here: channels first, uint8, 0 or
255 `(C, 10, 10)`, so the buffer and the networks treat MinAtar and Atari frames alike.
`-v0` ids have all 6 actions (as in the paper), `-v1` the game's minimal set. Sticky actions
(0.1) and difficulty ramping stay on, as published.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from dqn_lightning.errors import ConfigError

GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")
PIXEL = 255  # an active cell, as a pixel value: image networks scale uint8 frames by 1/255
RENDER_SCALE = 16  # screen pixels per MinAtar cell in rendered frames (10x10 -> 160x160)
# one colour per channel (a cell shows its highest active channel), on black
PALETTE = np.array(
    [
        [0, 0, 0],
        [230, 80, 60],
        [250, 200, 60],
        [90, 200, 90],
        [70, 140, 240],
        [200, 100, 220],
        [60, 210, 210],
        [240, 140, 40],
        [160, 160, 160],
        [255, 255, 255],
        [140, 90, 50],
    ],
    dtype=np.uint8,
)


def is_minatar(env_id: str) -> bool:
    """Whether `env_id` names a MinAtar game (`MinAtar/...`)."""
    return env_id.startswith("MinAtar/")


def register_minatar() -> None:
    """Registers the `MinAtar/<Game>-v0|v1` ids with Gymnasium once, or says what to install."""
    if f"MinAtar/{GAMES[0]}-v1" in gym.registry:
        return
    try:
        from minatar.gym import register_envs
    except ImportError:
        raise ConfigError(
            "MinAtar envs need the minatar package: pip install 'dqn-lightning[minatar]' (or pip install minatar)"
        ) from None
    register_envs()


def make_minatar_env(env_id: str, render_mode: str | None = None, **env_kwargs: Any) -> gym.Env:
    """A MinAtar game with `(C, 10, 10)` uint8 frames; `render_mode="rgb_array"` draws 160x160 RGB."""
    register_minatar()
    if env_id not in gym.registry:
        raise ConfigError(
            f"unknown MinAtar env {env_id!r}: use MinAtar/<Game>-v0 (all 6 actions) or -v1 (minimal actions) "
            f"with Game one of {', '.join(GAMES)}"
        )
    if render_mode not in (None, "rgb_array"):
        raise ConfigError(f"MinAtar envs render only as rgb_array here, not {render_mode!r}")
    with warnings.catch_warnings():
        # -v0 (all 6 actions) is the MinAtar paper's choice, which our presets keep on purpose:
        # Gymnasium's "is out of date, consider v1" would print into every run's log
        warnings.filterwarnings("ignore", message=".*is out of date", category=DeprecationWarning)
        env = gym.make(env_id, **env_kwargs)
    return ChannelsFirstFrames(env, render_mode=render_mode)


class ChannelsFirstFrames(gym.ObservationWrapper):
    """Channel-last binary frames `(H, W, C)` -> channels-first uint8 `(C, H, W)`, 0 or 255.

    Also makes each episode a function of its reset seed and actions alone (MinAtar carries the
    last action of the previous episode into the next one's sticky-action draw), which exact
    resume relies on, and renders frames as colours itself (MinAtar's own `rgb_array` needs
    seaborn and draws one pixel per cell).
    """

    def __init__(self, env: gym.Env, render_mode: str | None = None) -> None:
        super().__init__(env)
        height, width, channels = env.observation_space.shape  # type: ignore[misc]
        self.observation_space = gym.spaces.Box(0, PIXEL, (channels, height, width), np.uint8)
        self._render_mode = render_mode

    @property
    def render_mode(self) -> str | None:  # type: ignore[override]
        return self._render_mode

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(observation, -1, 0), dtype=np.uint8) * np.uint8(PIXEL)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self.env.unwrapped.game.last_action = 0  # type: ignore[attr-defined]
        return super().reset(seed=seed, options=options)

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The current frame as RGB `(10 * 16, 10 * 16, 3)` uint8, one colour per channel."""
        if self._render_mode != "rgb_array":
            return None
        return render_frame(self.env.unwrapped.game.state())  # type: ignore[attr-defined]


def render_frame(state: np.ndarray, scale: int = RENDER_SCALE) -> np.ndarray:
    """RGB `(H * scale, W * scale, 3)` uint8 of a channel-last frame: each cell in its top channel's colour."""
    channels = state.shape[-1]
    top = np.max(state.astype(np.int64) * np.arange(1, channels + 1), axis=-1)  # 0 where no channel is on
    colours = PALETTE[np.minimum(top, len(PALETTE) - 1)]
    return np.repeat(np.repeat(colours, scale, axis=0), scale, axis=1)
