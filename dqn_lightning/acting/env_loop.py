"""The env-stepping callback: acts in the training env and fills the replay buffer."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl
from typing_extensions import override

from dqn_lightning.acting.action_masks import ActionMasks, random_legal
from dqn_lightning.acting.clocks import TrainClock
from dqn_lightning.acting.env_steps import EnvSteps
from dqn_lightning.acting.envs import EnvFactory, make_vector_env
from dqn_lightning.acting.episodes import Episodes
from dqn_lightning.acting.interface import (
    Learner,
    StepOutput,
    StopRequest,
    agree_at_batch_end,
    check_parts_fit,
)
from dqn_lightning.acting.memory import ActingMemory, RecurrentLearner
from dqn_lightning.acting.rollout_log import RolloutLog
from dqn_lightning.bounds import check_bounds
from dqn_lightning.checkpoint_paths import resume_hint
from dqn_lightning.errors import ConfigError, TrainingFault
from dqn_lightning.replay.buffer import ReplayBuffer
from dqn_lightning.replay.dataset import ReplayDataset
from dqn_lightning.replay.prioritized import PrioritizedReplayBuffer
from dqn_lightning.replay.replay_files import DEFAULT_LIMIT_BYTES, ReplayFiles


class EnvLoop(EnvSteps):
    """Steps the training env(s) with the module's policy and adds every transition to the buffer.

    - At fit start: resets the env and fills the buffer with `learning_starts` env steps of a
      uniform random policy, so the dataloader's first batch finds data.
    - Before each round's draw: `train_freq` epsilon-greedy steps of every env (`collect`, which
      the `ReplayDataset` calls: it attaches this loop as its collector when training starts);
      with another dataloader, before each training batch.
    - Logs `rollout/episode_return`, `rollout/episode_length` per episode and `train/epsilon`,
      `perf/sps` every `log_interval` env steps, all against the env-step count (see `RolloutLog`).
    - Stops the Trainer once `total_timesteps` env steps or `max_episodes` episodes are done.

    Under DDP every rank runs its own envs and buffer, seeded `seed + rank`, in lockstep:
    `env_steps` and both budgets count over all ranks, and rank 0 logs episode statistics
    gathered from every rank once per `log_interval`.

    Args:
        env: a Gymnasium env id, or a function that builds one env.
        buffer: where transitions go (the same buffer the train dataloader samples); None: the
            buffer of the Trainer's `ReplayDataModule`, found when fit starts.
        total_timesteps: env-step budget over all envs (None: only `max_episodes` limits).
        max_episodes: episode budget (None: only `total_timesteps` limits).
        learning_starts: random-policy env steps taken at fit start, before any learning.
        train_freq: steps of every env per training batch.
        num_envs: envs stepped together in a vector env.
        vector: `sync` (all envs in this process) or `async` (one subprocess per env).
        eps_start: epsilon at env step 0.
        eps_end: epsilon at the end of the decay, and after it.
        exploration_fraction: decay length as a fraction of `total_timesteps`.
        exploration_steps: decay length in env steps; overrides `exploration_fraction`.
        seed: seeds every episode's env reset and the exploration draws (None: a random seed,
            still recorded so a resumed run replays the same episodes).
        log_interval: env steps between `train/epsilon` and `perf/sps` log points.
        save_buffer: write the replay buffer beside each checkpoint (`auto`: when it holds at most
            `buffer_limit_bytes`), so that a resumed run continues exactly.
        buffer_limit_bytes: size limit for `save_buffer="auto"`.
        action_masks: act only among the legal actions the env reports in `info["action_mask"]`,
            and store each next state's mask for the bootstrap (the buffer needs `action_masks`).
        env_kwargs: constructor arguments of an env id (`{"repeat_action_probability": 0.0}`: an
            ALE game without sticky actions).

    Example:
        >>> buffer = ReplayBuffer(10_000, obs_shape=(4,))
        >>> loop = EnvLoop("CartPole-v1", buffer, total_timesteps=5_000, learning_starts=500)
        >>> # trainer = pl.Trainer(callbacks=[loop]); trainer.fit(model, replay_dataloader(buffer, 64))
    """

    def __init__(
        self,
        env: str | EnvFactory,
        buffer: ReplayBuffer | None = None,
        *,
        total_timesteps: int | None = 50_000,
        max_episodes: int | None = None,
        learning_starts: int = 1_000,
        train_freq: int = 1,
        num_envs: int = 1,
        vector: Literal["sync", "async"] = "sync",
        eps_start: float = 1.0,
        eps_end: float = 0.05,
        exploration_fraction: float = 0.1,
        exploration_steps: int | None = None,
        seed: int | None = None,
        log_interval: int = 1_000,
        save_buffer: Literal["auto", "always", "never"] = "auto",
        buffer_limit_bytes: int = DEFAULT_LIMIT_BYTES,
        action_masks: bool = False,
        env_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if total_timesteps is None and max_episodes is None:
            raise ConfigError("give a budget: total_timesteps or max_episodes")
        if total_timesteps is None and exploration_steps is None:
            raise ConfigError("without total_timesteps, give exploration_steps (epsilon decay length in env steps)")
        check_bounds(
            total_timesteps=total_timesteps, max_episodes=max_episodes, learning_starts=learning_starts,
            train_freq=train_freq, num_envs=num_envs, eps_start=eps_start, eps_end=eps_end,
            exploration_fraction=exploration_fraction, exploration_steps=exploration_steps,
        )  # fmt: skip
        if log_interval < 1:
            raise ConfigError(f"log_interval must be >= 1, got {log_interval}")
        if vector not in ("sync", "async"):
            raise ConfigError(f"vector must be sync or async, got {vector!r}")
        self.env_source = env
        self.env_kwargs = dict(env_kwargs or {})
        self._buffer = buffer
        self._save_buffer, self._buffer_limit_bytes = save_buffer, buffer_limit_bytes
        self._replay_files = ReplayFiles(buffer, save_buffer, buffer_limit_bytes) if buffer is not None else None
        self.total_timesteps = total_timesteps
        self.max_episodes = max_episodes
        self.learning_starts = learning_starts
        self.train_freq = train_freq
        self.num_envs = num_envs
        self.vector = vector
        self.eps_start, self.eps_end = eps_start, eps_end
        self.exploration_steps = (
            exploration_steps if exploration_steps is not None else int(exploration_fraction * (total_timesteps or 0))
        )
        self.seed = seed if seed is not None else secrets.randbits(31)
        self.log_interval = log_interval
        self.rng = np.random.default_rng(self.seed)
        self.env: Any = None
        self.rank, self.world_size = 0, 1  # set from the Trainer in setup
        # counters: all saved by state_dict
        self.env_steps = 0
        self.clock = TrainClock()  # wall time in fit, evaluation excluded
        self.tracker = Episodes(num_envs)
        self._restored = False
        self._buffer_file: str | None = None  # replay file of the checkpoint we resumed from
        self.rollout_log = RolloutLog(log_interval)
        self._obs: np.ndarray = np.empty(0)  # current observations, set at train start
        self._rank_states: list[dict[str, Any]] | None = None  # DDP: every rank's state from a checkpoint
        self._fault: TrainingFault | None = None  # DDP: this rank's env fault, raised everywhere at batch end
        self._learner: Learner | None = None  # the module, set in setup
        self.masks = ActionMasks(action_masks, env if isinstance(env, str) else "the env")
        self._stops: list[StopRequest] | None = None  # the trainer's StopRequest callbacks, found at the first batch
        self._trainer: pl.Trainer | None = None  # set at train start, for collect()
        self._collects_for_dataset = False  # the replay dataset calls collect() before each draw
        self.memory: ActingMemory | None = None  # a recurrent learner's states, one per env (set in setup)
        self._memory_state: dict[str, Any] | None = None  # the states of a checkpoint, until setup

    @property
    def train_seconds(self) -> float:
        """Wall seconds spent training, evaluation excluded (as of the clock's last stop)."""
        return self.clock.seconds

    # ---- Lightning hooks ----------------------------------------------------------------------

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self.env is not None:
            return
        self.rank, self.world_size = trainer.global_rank, trainer.world_size
        self._attach_buffer(trainer)
        if self.rank > 0:  # each rank its own episodes, exploration and replay draws
            self.rng = np.random.default_rng(self.seed + self.rank)
            self.buffer.rng = np.random.default_rng(self.seed + self.rank)
        self.env = make_vector_env(
            self.env_source, self.num_envs, self.vector, training=True, env_kwargs=self.env_kwargs
        )
        self._learner = check_parts_fit(self.env, self.buffer, self.num_envs, pl_module)
        self.memory = (
            ActingMemory(self._learner, self.num_envs) if isinstance(self._learner, RecurrentLearner) else None
        )
        if self._memory_state is not None and self.memory is not None:
            self.memory.load_state_dict(self._memory_state)

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # on_train_start, not on_fit_start: it runs after Lightning restored a checkpoint.
        # The dataloader's first batch is drawn after this (DeferredBatch), from a full buffer.
        if self._restored and self.done:  # Lightning would still train one batch and evaluate again
            raise ConfigError(self._finished_message())
        self.clock.start()
        if self._rank_states is not None:  # a DDP checkpoint: continue this rank's own envs and buffer
            self._load_rank_state(self._rank_states[self.rank] if self.rank < len(self._rank_states) else None)
        seeds = [self._episode_seed(i) for i in range(self.num_envs)]
        self._obs, infos = self._env_call(trainer, "reset", self.env.reset, seed=seeds)
        self.masks.update(infos)
        if self._restored:
            self._load_buffer(trainer)
            segments = self.tracker.replay_segments(self.seed + self.rank)
            self._obs = np.stack(self._env_call(trainer, "reset", self.env.call, "replay_episode", segments))
            if self.masks.current is not None:  # the replayed episodes' current masks
                self.masks.current = np.stack(self.env.call("action_mask")).astype(bool)
        n_actions = self.env.single_action_space.n
        try:
            while self.env_steps < self.learning_starts:
                if self.memory is not None:  # random actions; the network still follows each episode
                    self._step(trainer, self.memory.act(self._obs, 1.0, self.rng))
                    continue
                legal = self.masks.for_acting()
                if legal is not None:
                    self._step(trainer, random_legal(self.rng.random(self.num_envs), legal))
                    continue
                self._step(trainer, self.rng.integers(n_actions, size=self.num_envs))
        except TrainingFault as fault:
            self._fault = fault
        agree_at_batch_end(trainer, self._fault)  # before the first batch's collectives (see interface)
        self._trainer = trainer
        dataset = getattr(getattr(trainer, "train_dataloader", None), "dataset", None)
        if isinstance(dataset, ReplayDataset) and dataset.buffer is self.buffer:
            dataset.collector, self._collects_for_dataset = self, True

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not self._collects_for_dataset:  # another dataloader: one round's steps per batch
            self.collect()

    @override
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # first of the batch-end hooks (EnvLoop comes first among the callbacks): before any checkpoint
        output: StepOutput = outputs if isinstance(outputs, dict) else {}  # type: ignore[assignment]
        loss_fault = output.get("fault")
        stops = self._stop_requests(trainer)
        agreed = agree_at_batch_end(
            trainer,
            self._fault or (loss_fault.report(self.env_steps, resume_hint(trainer)) if loss_fault else None),
            stop_requested=any(stop.requested for stop in stops),
            episodes=self.episodes,
        )
        for stop in stops:  # the callbacks come after this one and need no collective of their own
            stop.agreed = agreed.stop_requested
        if "priority" in output:  # the replay side writes what the learner measured
            if not isinstance(self.buffer, PrioritizedReplayBuffer):
                raise RuntimeError("the training step returned priorities, but the EnvLoop's buffer is not prioritized")
            self.buffer.update_priorities(output["slot"].cpu().numpy(), output["priority"].float().cpu().numpy())
        if self.rollout_log.due(self.env_steps):
            self.rollout_log.progress(trainer, self.env_steps, self.clock.elapsed(), self.epsilon)
        if self._done_everywhere(agreed.episodes):
            trainer.should_stop = True

    @override
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.clock.stop()  # evaluation time is not training time

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.clock.start()

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.clock.stop()

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # Lightning skips teardown hooks when fit fails: close the envs (async workers too) here
        self.teardown(trainer, pl_module, "fit")
        if isinstance(pl_module, Learner):
            pl_module.close_envs()

    def _finished_message(self) -> str:
        """What a resume of a run that had spent its budget is told: the run is done, and how to extend it."""
        if self.total_timesteps is not None and self.env_steps >= self.total_timesteps:
            return (
                f"this run is done: the checkpoint is at {self.env_steps:,} env steps, its budget of "
                f"{self.total_timesteps:,}; to train on, resume with a larger total_timesteps "
                f"(train.py --total-timesteps N, N > {self.env_steps:,})"
            )
        return (
            f"this run is done: the checkpoint has played {self.episodes:,} episodes, its budget of "
            f"{self.max_episodes:,}; to train on, resume with a larger max_episodes (train.py --max-episodes N)"
        )

    def _stop_requests(self, trainer: pl.Trainer) -> list[StopRequest]:
        """The trainer's `StopRequest` callbacks, found once (a Protocol isinstance check per callback
        and batch costs about as much as a small update's env step)."""
        if self._stops is None:
            self._stops = [cb for cb in trainer.callbacks if isinstance(cb, StopRequest)]  # type: ignore[attr-defined]
        return self._stops


def find_env_loop(trainer: pl.Trainer) -> EnvLoop | None:
    """The trainer's `EnvLoop` callback, or None."""
    return next((cb for cb in trainer.callbacks if isinstance(cb, EnvLoop)), None)  # type: ignore[attr-defined]
