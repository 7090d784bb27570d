"""The run assembled from one `TrainConfig`: module, buffer, env loop, loggers and Trainer.

Every script, the tuner, the benchmarks and the tests build a run here, so a user who
`pip install`s the package builds it the same way:

    >>> from dqn_lightning.run import parse_config, train
    >>> summary = train(parse_config(["--total-timesteps", "2000"]))  # doctest: +SKIP

`build` returns the parts without fitting, for people who want to change one before `trainer.fit`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import DataLoader

from dqn_lightning.acting.atari import is_atari
from dqn_lightning.acting.env_loop import EnvLoop
from dqn_lightning.acting.envs import EnvSpaces, env_spaces
from dqn_lightning.callbacks.checkpointing import (
    AtomicCheckpointIO,
    BestAndLastCheckpoint,
    PeriodicCheckpoint,
    check_logdir,
)
from dqn_lightning.callbacks.memory_format import ChannelsLast
from dqn_lightning.callbacks.progress import EpisodeProgressBar, PlainProgress, quiet_lightning_messages
from dqn_lightning.callbacks.resets import PeriodicReset
from dqn_lightning.callbacks.stopping import GracefulInterrupt, StopAtThreshold
from dqn_lightning.callbacks.video import EvalVideo
from dqn_lightning.errors import ConfigError, TrainingInterrupted, exit_code
from dqn_lightning.learner.module import DQN
from dqn_lightning.learner.recurrent import RecurrentDQN
from dqn_lightning.learner.user_networks import import_class
from dqn_lightning.replay.buffer import ReplayBuffer
from dqn_lightning.replay.dataset import replay_dataloader
from dqn_lightning.replay.prioritized import PrioritizedReplayBuffer
from dqn_lightning.replay.sequences import Sequences
from dqn_lightning.run.config import parse_settings, run_dir_of, save_run_config
from dqn_lightning.run.devices import placement
from dqn_lightning.run.loggers import build_loggers, finish_trackers, log_settings, write_trackers
from dqn_lightning.run.rounds import rounds_per_batch
from dqn_lightning.run.summary import format_summary, run_summary, write_summary
from dqn_lightning.run.train_config import TrainConfig
from dqn_lightning.variants import VARIANTS


@dataclass
class Run:
    """The parts of one training run, wired together and ready for `fit`."""

    config: TrainConfig
    model: DQN
    buffer: ReplayBuffer
    env_loop: EnvLoop
    checkpoint: BestAndLastCheckpoint
    interrupt: GracefulInterrupt
    loggers: list[Logger]
    trainer: pl.Trainer
    dataloader: DataLoader

    def fit(self) -> dict[str, Any]:
        """Trains to the budget and returns the summary (rank 0 also prints it and writes summary.json)."""
        config, trainer = self.config, self.trainer
        start = time.perf_counter()
        try:
            trainer.fit(self.model, train_dataloaders=self.dataloader, ckpt_path=config.resume)
            finish_trackers(self.loggers)
            summary = run_summary(trainer, self.model, self.env_loop, self.checkpoint, time.perf_counter() - start)
        finally:
            # Lightning leaves the DDP process group up, also after a fault; left to the interpreter's
            # exit, gloo's threads now and then abort the process ("terminate called without an active
            # exception", exit status 134 in place of the run's own)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
        if trainer.is_global_zero:
            path = write_summary(summary, summary["log_dir"] or config.logdir)
            print(f"\nSummary ({path}):\n{format_summary(summary)}")
        if self.interrupt.checkpoint is not None:
            raise TrainingInterrupted(
                f"stopped by {self.interrupt.signal_name} at env step {self.env_loop.env_steps}; "
                f"saved {self.interrupt.checkpoint}: continue with --resume last"
            )
        return summary


def build(config: TrainConfig, callbacks: Sequence[pl.Callback] = ()) -> Run:
    """Builds every part of the run `config` describes; `callbacks` are added to the Trainer's.

    Seeds everything first, so two builds from one config train identically on one machine.
    """
    place = placement(config.accelerator, config.devices, config.strategy)  # first: refusals write nothing
    if not config.verbose:
        quiet_lightning_messages()
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    if config.deterministic:  # cuBLAS reads it when CUDA starts: set before anything touches the GPU
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    pl.seed_everything(config.seed, workers=True, verbose=False)
    spaces = env_spaces(config.env, **(config.env_kwargs or {}))
    # the parts first: a setting they refuse stops the run before any folder is made
    model = build_module(config, spaces)
    buffer = build_buffer(config, spaces, model.state_size if isinstance(model, RecurrentDQN) else None)
    env_loop = build_env_loop(config, buffer)
    loggers = build_loggers(  # before any folder is made too: a tracker may be unreachable
        config.logger,
        config.logdir,
        config.env,
        run_dir=run_dir_of(config.resume) if config.resume is not None else None,  # the same run directory
        tracking_uri=config.mlflow_tracking_uri,
        project=config.project,
    )
    # fail before any work when the run could not save its results: two replay files (best and
    # last) per DDP rank when they are saved, plus checkpoints and event files
    replay_bytes = 2 * buffer.nbytes * place.processes(config.num_nodes) if env_loop.replay_files.enabled else 0
    check_logdir(
        run_dir_of(config.resume).parent.parent if config.resume else config.logdir,
        need_bytes=replay_bytes + (64 << 20),
    )
    checkpoint = BestAndLastCheckpoint()
    periodic = (
        [PeriodicCheckpoint(config.checkpoint_interval, config.keep_checkpoints)] if config.checkpoint_interval else []
    )
    interrupt = GracefulInterrupt()
    evaluates = config.eval_episodes > 0  # --stop-at-return needs evaluations: nothing scores without them
    # in a file a bar's redraws pile up into one endless line: plain lines there
    progress_bar = config.progress == "bar" or (config.progress == "auto" and sys.stdout.isatty())
    trainer = pl.Trainer(
        accelerator=place.accelerator,
        devices=place.devices,
        strategy=place.trainer_strategy(config.num_nodes),
        num_nodes=config.num_nodes,
        precision=config.precision,  # type: ignore[arg-type]
        deterministic=True if config.deterministic else None,  # None: leave torch's setting alone
        max_epochs=-1,  # one endless epoch; EnvLoop stops the run at its budget
        max_steps=config.max_steps,
        max_time=config.max_time,
        # evaluation is Lightning's validation loop, every eval_interval env steps (set below for DDP)
        val_check_interval=max(1, config.eval_interval // (config.train_freq * config.num_envs)),
        check_val_every_n_epoch=None,
        limit_val_batches=None if config.eval_episodes > 0 else 0,
        num_sanity_val_steps=0,
        logger=loggers,
        enable_progress_bar=not config.quiet and progress_bar,
        enable_model_summary=config.verbose,
        callbacks=[env_loop, checkpoint, interrupt]
        + ([] if config.quiet else [EpisodeProgressBar() if progress_bar else PlainProgress()])
        + periodic
        + ([EvalVideo()] if config.eval_video else [])
        + ([ChannelsLast()] if config.channels_last else [])
        + ([PeriodicReset(config.reset_interval, config.reset_layers)] if config.reset_interval else [])
        + ([StopAtThreshold(config.stop_at_return)] if config.stop_at_return is not None and evaluates else [])
        + list(callbacks),
        plugins=[AtomicCheckpointIO()],
    )
    # intervals in env steps -> training batches; under DDP each batch steps the envs of every rank
    rounds = batch_rounds(config, env_loop, trainer.world_size)
    env_steps_per_batch = rounds * config.train_freq * config.num_envs * trainer.world_size
    trainer.val_check_interval = max(1, config.eval_interval // env_steps_per_batch)
    # set after construction because world_size is the strategy's; Lightning keeps it as a plain attribute
    trainer.log_every_n_steps = max(1, 1_000 // env_steps_per_batch)  # type: ignore[attr-defined]
    log_settings(loggers, dataclasses.asdict(config), config.resume)
    if trainer.is_global_zero:
        if config.resume is None:
            save_run_config(config, loggers[0].log_dir)  # type: ignore[arg-type]  # a local logger's folder
        write_trackers(loggers, loggers[0].log_dir)  # type: ignore[arg-type]
    dataloader = replay_dataloader(buffer, config.batch_size, config.gradient_steps, rounds)
    return Run(config, model, buffer, env_loop, checkpoint, interrupt, loggers, trainer, dataloader)


def batch_rounds(config: TrainConfig, env_loop: EnvLoop, world_size: int) -> int:
    """--rounds-per-batch, checked, or chosen: batches end at every evaluation, periodic
    checkpoint and log point (see `run.rounds`)."""
    per_step = config.num_envs * world_size
    intervals = [env_loop.log_interval]
    intervals += [config.eval_interval] if config.eval_episodes > 0 else []
    intervals += [config.checkpoint_interval] if config.checkpoint_interval else []
    return rounds_per_batch(
        given=config.rounds_per_batch,
        env_steps_per_round=config.train_freq * per_step,
        gradient_steps=config.gradient_steps,
        fill_env_steps=math.ceil(config.learning_starts / per_step) * per_step,
        intervals=intervals,
        episode_budget_under_ddp=config.max_episodes is not None and world_size > 1,
    )


def train(config: TrainConfig, callbacks: Sequence[pl.Callback] = ()) -> dict[str, Any]:
    """Builds and trains one run; returns its summary (also written as summary.json)."""
    return build(config, callbacks).fit()


def main(argv: list[str] | None = None, prog: str = "train.py") -> int:
    """The command line: parse flags (and presets), train, and return the exit status (2: bad input)."""

    def run() -> None:
        config, origin = parse_settings(argv)
        rank_zero_only(print)(origin, flush=True)  # once, not once per DDP process
        train(config)

    return exit_code(prog, run)


def settings_for(target: Callable[..., Any], config: TrainConfig, **given: Any) -> dict[str, Any]:
    """The keyword arguments `target` takes: each setting of the same name, then `given` (the
    arguments named otherwise, or made from several settings). A new setting that a constructor
    takes under its own name needs no line here."""
    names = {field.name for field in dataclasses.fields(config)}
    taken = inspect.signature(target).parameters
    return {name: getattr(config, name) for name in taken if name in names and name not in DEPRECATED} | given


DEPRECATED = {"q_network"}  # DQN's old name for `network`: never filled from the settings


DQN_SETTINGS = set(inspect.signature(DQN.__init__).parameters) - {"self"}  # not for --variant-args


def build_module(config: TrainConfig, spaces: EnvSpaces) -> DQN:
    """The learner the settings ask for (DQN or its --variant), sized for the env's spaces."""
    user_network = {"class_path": config.q_network, "init_args": config.q_network_args or {}}
    cls = variant_class(config.variant) if config.recurrent is None else RecurrentDQN
    own = dict(config.variant_args or {}) if config.recurrent is None else recurrent_settings(config)
    taken = DQN_SETTINGS & set(own)
    if taken:
        raise ConfigError(f"--variant-args {sorted(taken)[0]!r} is a DQN setting: give it as its own flag")
    settings = settings_for(
        DQN,
        config,
        obs_shape=spaces.obs_shape,
        n_actions=spaces.n_actions,
        env_id=config.env,
        eval_seed=config.seed,
        network=config.network if config.q_network is None else user_network,
        optimizer_options=config.optimizer_options(),
        value_head=config.value_head(),
        augmentation=augmentation_of(config),
    )
    try:
        return cls(**own, **settings)
    except TypeError as err:  # a misspelt variant argument: one line, not a traceback
        if "unexpected keyword argument" not in str(err):
            raise
        raise ConfigError(f"--variant-args: {err}; see the variant's docstring for what it takes") from None


def recurrent_settings(config: TrainConfig) -> dict[str, Any]:
    """RecurrentDQN's own arguments from --recurrent and its settings (n-step returns are summed by
    the learner inside each sequence, not by the buffer)."""
    return {
        "recurrent": config.recurrent, "core_size": config.core_size, "burn_in": config.burn_in,
        "n_step": config.n_step, "stored_state": not config.zero_state, "priority_eta": config.priority_eta,
    }  # fmt: skip


def augmentation_of(config: TrainConfig) -> dict[str, float] | None:
    """DQN's `augmentation` from --random-shift and --intensity-jitter (None when both are off)."""
    if not config.random_shift and not config.intensity_jitter:
        return None
    return {"shift": config.random_shift, "intensity": config.intensity_jitter}


def variant_class(name: str | None) -> type[DQN]:
    """DQN, one of `dqn_lightning.variants` by name, or a DQN subclass by import path."""
    if name is None:
        return DQN
    if name in VARIANTS:
        return VARIANTS[name]
    if "." not in name:
        raise ConfigError(f"unknown --variant {name!r}: choose {', '.join(VARIANTS)} or give pkg.module.Class")
    return import_class(name, "--variant", base=DQN)


def build_buffer(config: TrainConfig, spaces: EnvSpaces, state_size: int | None = None) -> ReplayBuffer:
    """The replay buffer the settings ask for: uniform or prioritized, 1-step or n-step; with
    --recurrent, of sequences keeping acting states of `state_size` floats."""
    given: dict[str, Any] = {
        "capacity": config.buffer_size,
        "obs_shape": spaces.obs_shape,
        "obs_dtype": spaces.obs_dtype,
        # Atari's frame stacks share frames: keep each one once (0.7 GB per 100k transitions, not 5.6)
        "store_frames": is_atari(config.env),
        # the next states' legal actions, for the bootstrap max
        "action_masks": spaces.n_actions if config.action_masks else None,
    }
    if config.recurrent is not None:
        if state_size is None:
            raise ValueError("a --recurrent buffer needs the learner's state_size")
        length, overlap = config.sequence_length, config.sequence_overlap
        given |= {"sequences": Sequences(length, overlap, state_size, config.buffer_size), "n_step": 1}
    if not config.prioritized:
        return ReplayBuffer(**settings_for(ReplayBuffer, config, **given))
    per = {"alpha": config.per_alpha, "beta_start": config.per_beta_start, "eps": config.per_eps}
    given |= {key: value for key, value in per.items() if value is not None}  # unset: the buffer's defaults
    # beta reaches 1 at the end of the step budget (or after 100k steps with an episode budget)
    given["beta_steps"] = config.total_timesteps or 100_000
    return PrioritizedReplayBuffer(**settings_for(PrioritizedReplayBuffer, config, **given))


def build_env_loop(config: TrainConfig, buffer: ReplayBuffer) -> EnvLoop:
    """The env-stepping callback that fills `buffer` as the settings say."""
    return EnvLoop(**settings_for(EnvLoop, config, env=config.env, buffer=buffer))
