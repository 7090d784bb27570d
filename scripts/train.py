"""Train a DQN agent on a Gymnasium env with PyTorch Lightning.

    python scripts/train.py                           # CartPole-v1, `cartpole` preset, default accelerator
    python scripts/train.py --accelerator gpu         # the same on a GPU
    python scripts/train.py --preset seed-tutorial    # the seed tutorial's settings: CartPole-v0, 200 games
    python scripts/train.py --checkpoint-interval 10000  # also keep a checkpoint every 10,000 env steps
    python scripts/train.py --resume last             # continue the newest run exactly where it stopped
    python scripts/train.py --env Acrobot-v1          # an env's own preset when it has one
    python scripts/train.py --double --hidden-sizes 256 256   # switches and lists as typed
    python scripts/train.py --help                    # every flag, and where settings come from

Expect the `cartpole` preset to reach a greedy evaluation return of 475-500 within 50,000 env
steps. Logs, checkpoints (last.ckpt and the best by eval/return_mean) and summary.json go to
lightning_logs/<env>/version_N; watch with `tensorboard --logdir lightning_logs`.
Bad settings exit with status 2 and one line saying what to change.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from dqn_lightning import (
    DQN,
    EnvLoop,
    EnvSpaces,
    EpisodeProgressBar,
    PrioritizedReplayBuffer,
    ReplayBuffer,
    env_spaces,
    replay_dataloader,
)
from dqn_lightning.atari import is_atari
from dqn_lightning.best_checkpoint import BestAndLastCheckpoint
from dqn_lightning.checkpoints import AtomicCheckpointIO, check_logdir
from dqn_lightning.config import TrainConfig, parse_settings, run_dir_of, save_run_config
from dqn_lightning.errors import TrainingInterrupted, exit_code
from dqn_lightning.interrupt import GracefulInterrupt
from dqn_lightning.loggers import build_loggers, finish_trackers, log_settings, write_trackers
from dqn_lightning.periodic_checkpoint import PeriodicCheckpoint
from dqn_lightning.progress import quiet_lightning_messages
from dqn_lightning.summary import format_summary, run_summary, write_summary
from dqn_lightning.video import EvalVideo


def train(config: TrainConfig, callbacks: Sequence[pl.Callback] = ()) -> dict[str, Any]:
    """Runs one training job and returns its summary (also written as summary.json).

    `callbacks` are added to the Trainer's (for scripts that build on this one).
    """
    if not config.verbose:
        quiet_lightning_messages()
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    spaces = env_spaces(config.env)
    loggers = build_loggers(
        config.logger,
        config.logdir,
        config.env,
        run_dir=run_dir_of(config.resume) if config.resume is not None else None,  # the same run directory
        tracking_uri=config.mlflow_tracking_uri,
        project=config.project,
    )

    model = DQN(
        obs_shape=spaces.obs_shape,
        n_actions=spaces.n_actions,
        hidden_sizes=config.hidden_sizes,
        lr=config.lr,
        gamma=config.gamma,
        target_update_interval=config.target_update_interval,
        env_id=config.env,
        eval_episodes=config.eval_episodes,
        eval_seed=config.seed,
        double=config.double,
        dueling=config.dueling,
        loss=config.loss,
        max_grad_norm=config.max_grad_norm,
        tau=config.tau,
        network=config.network,
        optimizer=config.optimizer,
        optimizer_options=config.optimizer_options(),
        value_head=config.value_head(),
        noisy=config.noisy,
        q_network=None
        if config.q_network is None
        else {"class_path": config.q_network, "init_args": config.q_network_args or {}},
    )
    buffer = build_buffer(config, spaces)
    # fail before any work when the run could not save its results: two replay files (best and
    # last) when they are saved, plus checkpoints and event files
    saves_buffer = config.save_buffer == "always" or (config.save_buffer == "auto" and buffer.nbytes <= 1 << 30)
    check_logdir(
        run_dir_of(config.resume).parent.parent if config.resume else config.logdir,
        need_bytes=(2 * buffer.nbytes if saves_buffer else 0) + (64 << 20),
    )
    env_loop = EnvLoop(
        config.env,
        buffer,
        total_timesteps=config.total_timesteps,
        max_episodes=config.max_episodes,
        learning_starts=config.learning_starts,
        train_freq=config.train_freq,
        num_envs=config.num_envs,
        vector=config.vector,
        eps_start=config.eps_start,
        eps_end=config.eps_end,
        exploration_fraction=config.exploration_fraction,
        exploration_steps=config.exploration_steps,
        seed=config.seed,
        save_buffer=config.save_buffer,
    )
    checkpoint = BestAndLastCheckpoint()
    interrupt = GracefulInterrupt()
    trainer = pl.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        precision=config.precision,  # type: ignore[arg-type]
        max_epochs=-1,  # one endless epoch; EnvLoop stops the run at its budget
        max_steps=config.max_steps,
        max_time=config.max_time,
        # evaluation is Lightning's validation loop, every eval_interval env steps (set below for DDP)
        val_check_interval=max(1, config.eval_interval // (config.train_freq * config.num_envs)),
        check_val_every_n_epoch=None,
        limit_val_batches=None if config.eval_episodes > 0 else 0,
        num_sanity_val_steps=0,
        logger=loggers,
        enable_progress_bar=not config.quiet,
        enable_model_summary=config.verbose,
        callbacks=[env_loop, checkpoint, interrupt]
        + ([] if config.quiet else [EpisodeProgressBar()])
        + ([PeriodicCheckpoint(config.checkpoint_interval)] if config.checkpoint_interval else [])
        + ([EvalVideo()] if config.eval_video else [])
        + list(callbacks),
        plugins=[AtomicCheckpointIO()],
    )
    # intervals in env steps -> training batches; under DDP each batch steps the envs of every rank
    env_steps_per_batch = config.train_freq * config.num_envs * trainer.world_size
    trainer.val_check_interval = max(1, config.eval_interval // env_steps_per_batch)
    # set after construction because world_size is the strategy's; Lightning keeps it as a plain attribute
    trainer.log_every_n_steps = max(1, 1_000 // env_steps_per_batch)  # type: ignore[attr-defined]
    log_settings(loggers, dataclasses.asdict(config), config.resume)
    if trainer.is_global_zero:
        if config.resume is None:
            save_run_config(config, loggers[0].log_dir)  # type: ignore[arg-type]  # a local logger's folder
        write_trackers(loggers, loggers[0].log_dir)  # type: ignore[arg-type]
    start = time.perf_counter()
    try:
        trainer.fit(
            model,
            train_dataloaders=replay_dataloader(buffer, config.batch_size, config.gradient_steps),
            ckpt_path=config.resume,
        )
        finish_trackers(loggers)
        summary = run_summary(trainer, model, env_loop, checkpoint, time.perf_counter() - start)
    finally:
        # Lightning leaves the DDP process group up, also after a fault; left to the interpreter's
        # exit, gloo's threads now and then abort the process ("terminate called without an active
        # exception", exit status 134 in place of the run's own)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if trainer.is_global_zero:
        path = write_summary(summary, summary["log_dir"] or config.logdir)
        print(f"\nSummary ({path}):\n{format_summary(summary)}")
    if interrupt.checkpoint is not None:
        raise TrainingInterrupted(
            f"stopped by {interrupt.signal_name} at env step {env_loop.env_steps}; saved {interrupt.checkpoint}: "
            "continue with --resume last"
        )
    return summary


def build_buffer(config: TrainConfig, spaces: EnvSpaces) -> ReplayBuffer:
    """The replay buffer the settings ask for: uniform or prioritized, 1-step or n-step."""
    common: dict[str, Any] = {
        "n_step": config.n_step,
        "gamma": config.gamma,
        "num_envs": config.num_envs,
        # Atari's frame stacks share frames: keep each one once (0.7 GB per 100k transitions, not 5.6)
        "store_frames": is_atari(config.env),
    }
    if not config.prioritized:
        return ReplayBuffer(config.buffer_size, spaces.obs_shape, spaces.obs_dtype, seed=config.seed, **common)
    per: dict[str, Any] = {
        "alpha": config.per_alpha,
        "beta_start": config.per_beta_start,
        "eps": config.per_eps,
        # beta reaches 1 at the end of the step budget (or after 100k steps with an episode budget)
        "beta_steps": config.total_timesteps or 100_000,
    }
    return PrioritizedReplayBuffer(
        config.buffer_size,
        spaces.obs_shape,
        spaces.obs_dtype,
        seed=config.seed,
        **{k: v for k, v in per.items() if v is not None},
        **common,
    )


def main(argv: list[str] | None = None) -> int:
    def run() -> None:
        config, origin = parse_settings(argv)
        rank_zero_only(print)(origin, flush=True)  # once, not once per DDP process
        train(config)

    return exit_code("train.py", run)


if __name__ == "__main__":
    sys.exit(main())
