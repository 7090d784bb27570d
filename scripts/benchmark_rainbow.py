"""What Rainbow's parts cost: env steps per second of DQN, each part alone, and all of Rainbow.

    python scripts/benchmark_rainbow.py                    # LunarLander and MinAtar Breakout, 20,000 env steps each
    python scripts/benchmark_rainbow.py --steps 4000 --envs lunarlander

The same work for every contender of an env: our DQN preset for it (`lunarlander`, or
`minatar-breakout` on MinAtar/Breakout-v0), and that preset with one of Rainbow's parts added
(`--prioritized`, `--dueling`, `--distributional c51`, `--noisy`), then `--rainbow` itself: the
same env steps, the same updates (bursts of the preset's size), the same batch, learning from a
quarter of the steps on. Prints env steps per second and each one's ratio to DQN, and beside them
each contender's update floor: env steps per second if all but its updates were free (its own
network, value head, batch, n-step and importance weights, updated as our learner does it, on
batches made beforehand: no env, no acting, no buffer, no Lightning), whose ratio to DQN's floor
bounds what an implementation doing these updates can reach. The Rainbow
presets (`lunarlander-rainbow`, `minatar-rainbow`) are these presets plus `--rainbow` (the
MinAtar one with 1-step returns). Run it on an idle machine: one process at a time, one torch
thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dqn_lightning.acting.envs import env_spaces
from dqn_lightning.learner.noisy import resample_noise
from dqn_lightning.private_api import direct_update
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.run import train
from dqn_lightning.run.build import build_module
from dqn_lightning.run.config import parse_config
from dqn_lightning.tools.machine import cpu_name

ENVS = {  # name: the DQN preset and its flags
    "lunarlander": ["--preset", "lunarlander"],
    "minatar-breakout": ["--preset", "minatar-breakout"],
}
CONTENDERS = {  # label: flags added to the DQN preset
    "DQN (the preset)": [],
    "+ prioritized replay": ["--prioritized"],
    "+ dueling": ["--dueling"],
    "+ C51 (51 atoms)": ["--distributional", "c51"],
    "+ noisy nets": ["--noisy"],
    "Rainbow (--rainbow)": ["--rainbow"],
}


def contender_flags(env: str, label: str, steps: int, out: Path) -> list[str]:
    """train.py's flags for one contender on one env: the preset, the part, the shared budget."""
    return [*ENVS[env], *CONTENDERS[label], "--total-timesteps", str(steps), "--learning-starts", str(steps // 4),
            "--eval-episodes", "0", "--save-buffer", "never", "--quiet", "--logdir", str(out)]  # fmt: skip


def env_steps_per_second(flags: list[str]) -> float:
    """Env steps per second of one training run through train.py's path, evaluation off."""
    summary = train(parse_config(flags))
    return float(summary["env_steps"] / summary["train_seconds"])


def update_floor(flags: list[str], timed: int = 400) -> float:
    """Env steps per second if everything but the contender's updates took no time (see above).

    The updates as our learner makes them (`DQN._learn`): bursts of `--gradient-steps`
    minibatches, their targets in one pass while the bootstrap network holds still, noise
    redrawn per update, the direct fused-Adam step; on batches made beforehand.
    """
    config = parse_config(flags)
    spaces = env_spaces(config.env)
    torch.manual_seed(0)
    model = build_module(config, spaces)
    optimizer = model.configure_optimizers()
    g, batch = config.gradient_steps, config.batch_size
    obs = torch.rand(2, g, batch, *spaces.obs_shape)
    obs = (obs < 0.1).to(torch.uint8) * 255 if spaces.obs_dtype == np.uint8 else obs  # MinAtar: uint8 frames
    actions, rewards = torch.randint(0, spaces.n_actions, (g, batch)), torch.rand(g, batch)
    terminated = (torch.rand(g, batch) < 0.01).float()
    steps = torch.full((g, batch), float(config.n_step)) if config.n_step > 1 else None
    weight = torch.rand(g, batch) if config.prioritized else None
    together = 1 if model.double_q else g  # Double DQN's targets change with every update
    bursts = max(1, timed // g)
    start = 0.0
    for burst in range(bursts + 1):  # the first warms up
        if burst == 1:
            start = time.perf_counter()
        for first in range(0, g, together):
            part = slice(first, first + together)
            stacked = ReplayBatch(
                obs[0, part], actions[part], rewards[part], obs[1, part], terminated[part],
                steps[part] if steps is not None else None,
            )  # fmt: skip
            targets = model.td_target(stacked)
            for k in range(first, min(g, first + together)):
                if model.noisy:
                    resample_noise(model.q_network, model._generators.noise)
                w = weight[k] if weight is not None else None
                minibatch = ReplayBatch(obs[0, k], actions[k], rewards[k], obs[1, k], terminated[k], weight=w)
                loss = model.td_loss(minibatch, targets[k - first]).loss
                direct_update(optimizer, loss, config.max_grad_norm)
    per_update = (time.perf_counter() - start) / (bursts * g)
    return config.train_freq / (g * per_update)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per contender")
    parser.add_argument("--envs", nargs="+", choices=list(ENVS), default=list(ENVS))
    parser.add_argument("--floor-updates", type=int, default=400, help="updates timed for each update floor")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    lines = [
        "| env | contender | env steps/s | vs DQN | update floor | floor vs DQN's |",
        "|---|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for env in args.envs:
            base_sps = base_floor = None
            for label in CONTENDERS:
                flags = contender_flags(env, label, args.steps, Path(tmp) / env)
                sps = env_steps_per_second(flags)
                floor = update_floor(flags, args.floor_updates)
                base_sps, base_floor = base_sps or sps, base_floor or floor
                lines.append(f"| {env} | {label} | {sps:.0f} | {sps / base_sps:.2f}x | {floor:.0f} "
                             f"| {floor / base_floor:.2f}x |")  # fmt: skip
                print(lines[-1], flush=True)
    print(f"\n{cpu_name()}, torch {torch.__version__}, 1 thread\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
