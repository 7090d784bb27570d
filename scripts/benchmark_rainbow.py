"""What Rainbow's parts cost: env steps per second of DQN, each part alone, and all of Rainbow.

    python scripts/benchmark_rainbow.py                    # LunarLander and MinAtar Breakout, 20,000 env steps each
    python scripts/benchmark_rainbow.py --steps 4000 --envs lunarlander

The same work for every contender of an env: our DQN preset for it (`lunarlander`, or
`minatar-breakout` on MinAtar/Breakout-v0), and that preset with one of Rainbow's parts added
(`--prioritized`, `--dueling`, `--distributional c51`, `--noisy`), then `--rainbow` itself: the
same env steps, the same updates (bursts of the preset's size), the same batch, learning from a
quarter of the steps on. Prints env steps per second and each one's ratio to DQN. The Rainbow
presets (`lunarlander-rainbow`, `minatar-rainbow`) are these presets plus `--rainbow` (the
MinAtar one with 1-step returns). Run it on an idle machine: one process at a time, one torch
thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per contender")
    parser.add_argument("--envs", nargs="+", choices=list(ENVS), default=list(ENVS))
    args = parser.parse_args(argv)
    lines = ["| env | contender | env steps/s | vs DQN |", "|---|---|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for env in args.envs:
            base_sps = None
            for label in CONTENDERS:
                sps = env_steps_per_second(contender_flags(env, label, args.steps, Path(tmp) / env))
                base_sps = base_sps or sps
                lines.append(f"| {env} | {label} | {sps:.0f} | {sps / base_sps:.2f}x |")
                print(lines[-1], flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
