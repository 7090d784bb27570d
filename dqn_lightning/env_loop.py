"""The env-stepping callback: acts in the training env and fills the replay buffer."""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Protocol

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from typing_extensions import override

from dqn_lightning.buffer import ReplayBuffer
from dqn_lightning.envs import EnvFactory, make_vector_env
from dqn_lightning.errors import ConfigError
from dqn_lightning.schedules import linear_schedule


class Actor(Protocol):
    """What the loop needs from the module: an epsilon-greedy policy."""

    def act(self, obs: np.ndarray, epsilon: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray: ...


class EnvLoop(Callback):
    """Steps the training env(s) with the module's policy and adds every transition to the buffer.

    - At fit start: resets the env and fills the buffer with `learning_starts` env steps of a
      uniform random policy, so the dataloader's first batch finds data.
    - Before each training batch: `train_freq` epsilon-greedy steps of every env.
    - Logs `rollout/episode_return`, `rollout/episode_length` per episode and `train/epsilon`,
      `perf/sps` every `log_interval` env steps, all against the env-step count.
    - Stops the Trainer once `total_timesteps` env steps or `max_episodes` episodes are done.

    Args:
        env: a Gymnasium env id, or a function that builds one env.
        buffer: where transitions go (the same buffer the train dataloader samples).
        total_timesteps: env-step budget over all envs (None: only `max_episodes` limits).
        max_episodes: episode budget (None: only `total_timesteps` limits).
        learning_starts: random-policy env steps taken at fit start, before any learning.
        train_freq: steps of every env per training batch.
        num_envs: envs stepped together in a vector env.
        eps_start, eps_end: epsilon at env step 0 and at the end of the decay.
        exploration_fraction: decay length as a fraction of `total_timesteps`.
        exploration_steps: decay length in env steps; overrides `exploration_fraction`.
        seed: seeds the envs (`seed + i` for env i) and the exploration draws.
        log_interval: env steps between `train/epsilon` and `perf/sps` log points.

    Example:
        >>> buffer = ReplayBuffer(10_000, obs_shape=(4,))
        >>> loop = EnvLoop("CartPole-v1", buffer, total_timesteps=5_000, learning_starts=500)
        >>> # trainer = pl.Trainer(callbacks=[loop]); trainer.fit(model, replay_dataloader(buffer, 64))
    """

    def __init__(
        self,
        env: str | EnvFactory,
        buffer: ReplayBuffer,
        *,
        total_timesteps: int | None = 100_000,
        max_episodes: int | None = None,
        learning_starts: int = 1_000,
        train_freq: int = 1,
        num_envs: int = 1,
        eps_start: float = 1.0,
        eps_end: float = 0.05,
        exploration_fraction: float = 0.1,
        exploration_steps: int | None = None,
        seed: int | None = None,
        log_interval: int = 1_000,
    ) -> None:
        if total_timesteps is None and max_episodes is None:
            raise ConfigError("give a budget: total_timesteps or max_episodes")
        if total_timesteps is None and exploration_steps is None:
            raise ConfigError("without total_timesteps, give exploration_steps (epsilon decay length in env steps)")
        for name, value in {
            "total_timesteps": total_timesteps,
            "max_episodes": max_episodes,
            "train_freq": train_freq,
            "num_envs": num_envs,
            "log_interval": log_interval,
        }.items():
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if learning_starts < 0 or (exploration_steps is not None and exploration_steps < 0):
            raise ConfigError("learning_starts and exploration_steps must be >= 0")
        if not (0.0 <= eps_end <= 1.0 and 0.0 <= eps_start <= 1.0 and 0.0 <= exploration_fraction <= 1.0):
            raise ConfigError("eps_start, eps_end and exploration_fraction must lie in [0, 1]")
        self.env_source = env
        self.buffer = buffer
        self.total_timesteps = total_timesteps
        self.max_episodes = max_episodes
        self.learning_starts = learning_starts
        self.train_freq = train_freq
        self.num_envs = num_envs
        self.eps_start, self.eps_end = eps_start, eps_end
        self.exploration_steps = (
            exploration_steps if exploration_steps is not None else int(exploration_fraction * (total_timesteps or 0))
        )
        self.seed = seed
        self.log_interval = log_interval
        self.rng = np.random.default_rng(seed)
        self.env: Any = None
        # counters: all saved by state_dict
        self.env_steps = 0
        self.episodes = 0
        self.train_seconds = 0.0  # wall time in fit, evaluation excluded
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.recent_lengths: deque[int] = deque(maxlen=100)
        self._next_log = log_interval
        self._clock: float | None = None
        self._sps_mark = (0, 0.0)

    @property
    def epsilon(self) -> float:
        """Exploration rate at the current env step."""
        return linear_schedule(self.eps_start, self.eps_end, self.exploration_steps, self.env_steps)

    @property
    def done(self) -> bool:
        """True once either budget is spent."""
        return (self.total_timesteps is not None and self.env_steps >= self.total_timesteps) or (
            self.max_episodes is not None and self.episodes >= self.max_episodes
        )

    # ---- Lightning hooks ----------------------------------------------------------------------

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.env is not None:
            return
        self.env = make_vector_env(self.env_source, self.num_envs)
        obs_shape = self.env.single_observation_space.shape
        if tuple(self.buffer.obs.shape[1:]) != tuple(obs_shape):
            raise ConfigError(
                f"the replay buffer stores observations of shape {self.buffer.obs.shape[1:]} but the env "
                f"returns {obs_shape}: build the buffer from the env's observation space"
            )
        expected = getattr(pl_module, "n_actions", None)
        if expected is not None and expected != self.env.single_action_space.n:
            raise ConfigError(
                f"the module has {expected} actions but the env has {self.env.single_action_space.n}: "
                "build the module for this env (DQN.from_env)"
            )

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seeds = None if self.seed is None else [self.seed + i for i in range(self.num_envs)]
        self._obs, _ = self.env.reset(seed=seeds)
        self._episode_return = np.zeros(self.num_envs)
        self._episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self._start_clock()
        n_actions = self.env.single_action_space.n
        while self.env_steps < self.learning_starts:
            self._step(trainer, self.rng.integers(n_actions, size=self.num_envs))

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        actor: Actor = pl_module  # type: ignore[assignment]
        for _ in range(self.train_freq):
            if self.done:
                break
            self._step(trainer, actor.act(self._obs, self.epsilon, self.rng))

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.env_steps >= self._next_log:
            self._log_progress(trainer)
        if self.done:
            trainer.should_stop = True

    @override
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop_clock()  # evaluation time is not training time

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_clock()

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop_clock()

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "train_seconds": self.train_seconds,
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
            "rng": self.rng.bit_generator.state,
            "buffer": self.buffer.state_dict(),
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.env_steps = state_dict["env_steps"]
        self.episodes = state_dict["episodes"]
        self.train_seconds = state_dict.get("train_seconds", 0.0)
        self.recent_returns.extend(state_dict.get("recent_returns", []))
        self.recent_lengths.extend(state_dict.get("recent_lengths", []))
        self.rng.bit_generator.state = state_dict["rng"]
        if "buffer" in state_dict:
            self.buffer.load_state_dict(state_dict["buffer"])
        self._next_log = (self.env_steps // self.log_interval + 1) * self.log_interval

    # ---- helpers ------------------------------------------------------------------------------

    def _step(self, trainer: pl.Trainer, actions: np.ndarray) -> None:
        """One step of every env; stores the transitions and closes finished episodes."""
        next_obs, reward, terminated, truncated, info = self.env.step(actions)
        ended = terminated | truncated
        stored_next = next_obs
        if ended.any():
            # same-step autoreset: next_obs already starts the new episode; the true last
            # observation of a finished episode is in final_obs. The only place truncation
            # matters: it ends the episode here, but is not stored, so it still bootstraps.
            stored_next = next_obs.copy()
            for i in np.flatnonzero(ended):
                stored_next[i] = info["final_obs"][i]
        self.buffer.add(self._obs, actions, reward, stored_next, terminated)
        self._obs = next_obs
        self.env_steps += self.num_envs
        self._episode_return += reward
        self._episode_length += 1
        for i in np.flatnonzero(ended):
            self._end_episode(trainer, i)

    def _end_episode(self, trainer: pl.Trainer, i: int) -> None:
        self.episodes += 1
        self.recent_returns.append(float(self._episode_return[i]))
        self.recent_lengths.append(int(self._episode_length[i]))
        self._log(
            trainer,
            {"rollout/episode_return": self._episode_return[i], "rollout/episode_length": self._episode_length[i]},
        )
        self._episode_return[i] = 0.0
        self._episode_length[i] = 0

    def _log_progress(self, trainer: pl.Trainer) -> None:
        seconds = self._elapsed()
        steps0, seconds0 = self._sps_mark
        sps = (self.env_steps - steps0) / max(seconds - seconds0, 1e-9)
        self._sps_mark = (self.env_steps, seconds)
        self._log(trainer, {"train/epsilon": self.epsilon, "perf/sps": sps})
        self._next_log = (self.env_steps // self.log_interval + 1) * self.log_interval

    def _log(self, trainer: pl.Trainer, metrics: dict[str, Any]) -> None:
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({k: float(v) for k, v in metrics.items()}, step=self.env_steps)

    def mean_return(self, last: int = 100) -> float:
        """Mean return of the last `last` finished episodes (NaN before the first)."""
        recent = list(self.recent_returns)[-last:]
        return float(np.mean(recent)) if recent else float("nan")

    def _start_clock(self) -> None:
        self._clock = time.perf_counter()

    def _stop_clock(self) -> None:
        self.train_seconds = self._elapsed()
        self._clock = None

    def _elapsed(self) -> float:
        return self.train_seconds + (time.perf_counter() - self._clock if self._clock is not None else 0.0)
