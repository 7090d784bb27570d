"""The collecting half of `EnvLoop`: epsilon-greedy steps of the training envs into the buffer,
episode ends and their logs, and the budgets that end training."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from dqn_lightning.acting.atari import GAME_CONTINUES
from dqn_lightning.acting.clocks import linear_schedule
from dqn_lightning.acting.interface import Learner
from dqn_lightning.acting.loop_state import LoopState
from dqn_lightning.acting.memory import ActingMemory
from dqn_lightning.checkpoint_paths import resume_hint
from dqn_lightning.errors import TrainingFault


class EnvSteps(LoopState):
    """Env steps, episodes and budgets for the subclass (`EnvLoop`), which sets the attributes
    below and calls these from its Lightning hooks."""

    env: Any
    env_source: Any
    num_envs: int
    train_freq: int
    total_timesteps: int | None
    max_episodes: int | None
    eps_start: float
    eps_end: float
    exploration_steps: int
    _learner: Learner | None
    _trainer: pl.Trainer | None
    _fault: TrainingFault | None
    _obs: np.ndarray  # current observations `(num_envs, *obs_shape)`
    memory: ActingMemory | None  # each env's recurrent state (a recurrent learner)

    @property
    def epsilon(self) -> float:
        """Exploration rate at the current env step."""
        return linear_schedule(self.eps_start, self.eps_end, self.exploration_steps, self.env_steps)

    @property
    def episodes(self) -> int:
        """Episodes finished on this rank."""
        return self.tracker.finished

    @property
    def recent_returns(self) -> deque[float]:
        """Returns of this rank's last 100 finished episodes, oldest first."""
        return self.tracker.recent_returns

    @property
    def recent_lengths(self) -> deque[int]:
        """Lengths (env steps) of this rank's last 100 finished episodes, oldest first."""
        return self.tracker.recent_lengths

    @property
    def done(self) -> bool:
        """True once either budget is spent (the episode budget as counted on this rank)."""
        return (self.total_timesteps is not None and self.env_steps >= self.total_timesteps) or (
            self.max_episodes is not None and self.episodes >= self.max_episodes
        )

    @property
    def budget_spent(self) -> bool:
        """Whether another round may not start (see `ReplayDataset`): the env-step budget, which
        every DDP rank reaches in the same round; one process also stops at the episode budget
        (under DDP that is agreed at the batch's end, as every rank must take the same updates)."""
        if self.world_size == 1:
            return self.done
        return self.total_timesteps is not None and self.env_steps >= self.total_timesteps

    def _done_everywhere(self, total_episodes: int) -> bool:
        """`done`, agreed by all ranks (they must stop at the same batch or DDP's all-reduce hangs):
        env steps advance in lockstep, so every rank decides the same; episodes are counted over all."""
        return self.done or (self.max_episodes is not None and total_episodes >= self.max_episodes)

    def collect(self) -> None:
        """One round's env steps: `train_freq` epsilon-greedy steps of every env, each transition
        added to the buffer (the replay dataset's `Collector`)."""
        assert self._learner is not None and self._trainer is not None  # set in setup, at train start
        trainer = self._trainer
        try:
            for _ in range(self.train_freq):
                if self.done or self._fault is not None:
                    break
                mask = self.masks.for_acting()
                if self.memory is not None:
                    actions = self.memory.act(self._obs, self.epsilon, self.rng)
                elif mask is None:
                    actions = self._learner.act(self._obs, self.epsilon, self.rng)
                else:
                    actions = self._learner.act(self._obs, self.epsilon, self.rng, mask=mask)
                self._step(trainer, actions)
        except TrainingFault as fault:
            if self.world_size == 1:
                raise
            self._fault = fault  # raised on every rank at the end of this batch (see interface)

    def _env_call(self, trainer: pl.Trainer, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls the env; an exception from it stops training with a `TrainingFault` saying where."""
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            name = self.env_source if isinstance(self.env_source, str) else "the env"
            reason = " ".join(str(err).split())[:200]
            raise TrainingFault(
                f"env {name} raised {type(err).__name__} ({reason}) in {what} at env step {self.env_steps}; "
                f"the envs are closed; {resume_hint(trainer)}"
            ) from err

    def _episode_seed(self, i: int) -> int:
        return self.tracker.seed(self.seed + self.rank, i)

    def _step(self, trainer: pl.Trainer, actions: np.ndarray) -> None:
        """One step of every env; stores the transitions, then resets the envs that finished."""
        next_obs, reward, terminated, truncated, infos = self._env_call(trainer, "step", self.env.step, actions)
        self.masks.count(actions)
        self.masks.update(infos)  # next_obs's legal actions (a finished episode's last state's, before reset)
        next_mask = self.masks.current if self.masks.enabled else None  # the buffer copies it in
        # the one place truncation matters: it ends the episode (and an n-step sum), but only
        # `terminated` cuts the bootstrap, so a time-limit cut still bootstraps from next_obs
        state = self.memory.state if self.memory is not None else None  # the state before this step
        self.buffer.add(self._obs, actions, reward, next_obs, terminated, truncated, next_mask=next_mask, state=state)
        self.env_steps += self.num_envs * self.world_size
        self.tracker.step(actions, reward)
        ended = terminated | truncated
        if self.memory is not None:  # each env's next state; the initial one where an episode ended
            self.memory.observe(actions, reward, ended)
        if ended.any():
            for i in np.flatnonzero(ended).tolist():
                self._end_episode(trainer, i)
            seeds = [self._episode_seed(i) if ended[i] else None for i in range(self.num_envs)]
            next_obs, infos = self._env_call(
                trainer, "reset", self.env.reset, seed=seeds, options={"reset_mask": ended}
            )
            continues = infos.get(GAME_CONTINUES, np.zeros(self.num_envs, dtype=bool))
            for i in np.flatnonzero(ended).tolist():
                self.tracker.started(i, bool(continues[i]))
            self.masks.update(infos)
        self._obs = next_obs

    def _end_episode(self, trainer: pl.Trainer, i: int) -> None:
        episode_return, length = self.tracker.end(i)
        self.rollout_log.episode(trainer, self.env_steps, episode_return, length)

    def total_episodes(self, trainer: pl.Trainer) -> int:
        """Episodes finished over all ranks (a collective under DDP: every rank must call it)."""
        if self.world_size == 1:
            return self.episodes
        mine = torch.tensor(float(self.episodes), device=trainer.strategy.root_device)
        return int(trainer.strategy.reduce(mine, reduce_op="sum"))

    def mean_return(self, last: int = 100) -> float:
        """Mean return of this rank's last `last` finished episodes (NaN before the first)."""
        return self.tracker.mean_return(last)
