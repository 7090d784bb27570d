"""Where an Atari 100k env step goes on this CPU: the update's parts and the acting step, per recipe.

    python scripts/atari100k_speed.py                          # atari100k-drq and atari100k-der, 1 thread
    python scripts/atari100k_speed.py --recipes atari100k-drq --threads 2 --updates 200

Builds each preset's module and buffer as `train.py` does (Pong), fills the buffer with 5,000 steps
of a random policy, then times, per update (the median of 5 blocks): the draw from the buffer
(`sample`: frame windows and the n-step sums), the augmentation, the target pass (`td_target`), the
online pass and loss (`td_loss`), backward, and the optimizer step with the target copy; and per
env step: the action (one observation through the network) and the env's own step. The last line
is the env steps per second those add up to at the recipe's updates per env step, and the whole run's
minutes at 100k steps. Run it on an idle machine: it prints ratios you can trust only then.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch

from dqn_lightning.acting.envs import env_spaces, make_env
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.run.build import build_buffer, build_module
from dqn_lightning.run.config import parse_config
from dqn_lightning.tools.machine import cpu_name

FILL = 5_000


def blocks(fn: Callable[[], Any], count: int) -> float:
    """Milliseconds per call of `fn`: the median of 5 blocks of `count // 5` calls (after 2 untimed)."""
    for _ in range(2):
        fn()
    per_block = max(1, count // 5)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(per_block):
            fn()
        times.append((time.perf_counter() - start) / per_block * 1000)
    return statistics.median(times)


def split(recipe: str, updates: int) -> dict[str, float]:
    """Milliseconds of each part of one env step with its updates of `recipe` (the update's parts times
    the updates per env step: 2 for `atari100k-drq-reset`)."""
    config = parse_config(["--preset", recipe, "--env", "ALE/Pong-v5", "--torch-threads", str(torch.get_num_threads())])
    spaces = env_spaces(config.env, **(config.env_kwargs or {}))
    torch.manual_seed(0)
    model = build_module(config, spaces)
    buffer = build_buffer(config, spaces)
    env = make_env(config.env, training=True, **(config.env_kwargs or {}))
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    for _ in range(FILL):  # real frames, so the frame windows and n-step sums are those of a run
        action = int(rng.integers(spaces.n_actions))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs[None], [action], [float(reward)], next_obs[None], [terminated], [truncated])
        obs = env.reset()[0] if terminated or truncated else next_obs
    optimizer = model.configure_optimizers()
    batch = cast(ReplayBatch, buffer.sample(config.batch_size))  # transitions: not a sequence buffer
    parts: dict[str, float] = {"sample": blocks(lambda: buffer.sample(config.batch_size), updates)}
    if model.augmentation is not None:
        augmentation = model.augmentation
        parts["augmentation"] = blocks(lambda: augmentation(batch, model._generators.noise), updates)
        batch = augmentation(batch, model._generators.noise)
    parts["target pass"] = blocks(lambda: model.td_target(batch), updates)
    target = model.td_target(batch)
    parts["online pass and loss"] = blocks(lambda: model.td_loss(batch, target), updates)

    def backward() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.td_loss(batch, target).loss.backward()

    parts["backward"] = blocks(backward, updates) - parts["online pass and loss"]

    def step() -> None:
        optimizer.step()
        if model.gradient_step % model.target_update_interval == 0:
            model.sync_target()

    backward()
    parts["optimizer step, target copy"] = blocks(step, updates)
    per_step = config.gradient_steps / config.train_freq
    parts = {name: ms * per_step for name, ms in parts.items()}
    parts["action"] = blocks(lambda: model.act(obs[None], 0.0), updates)
    parts["env step"] = blocks(lambda: env.step(int(rng.integers(spaces.n_actions))), updates)
    env.close()
    return parts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["atari100k-drq", "atari100k-der"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--updates", type=int, default=100, help="timed calls per part")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{cpu_name()}, torch {torch.__version__}, {args.threads} thread(s)")
    for recipe in args.recipes:
        parts = split(recipe, args.updates)
        total = sum(parts.values())
        print(f"\n| {recipe} | ms | share |\n|---|---:|---:|")
        for name, ms in parts.items():
            print(f"| {name} | {ms:.2f} | {ms / total:.0%} |")
        print(f"| one env step with its updates | {total:.2f} | {1000 / total:.1f} env steps/s, "
              f"{100_000 * total / 1000 / 60:.0f} minutes per 100k |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
