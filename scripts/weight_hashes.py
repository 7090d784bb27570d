"""Fixed-seed weight hashes of a few short runs, to show that a refactor of the update changed nothing.

    python scripts/weight_hashes.py            # every run below (about 2 minutes on 2 cores)
    python scripts/weight_hashes.py cartpole   # one of them

Each run trains a few thousand env steps with seed 0 and prints the sha256 of its final weights
and buffers. Run it before and after a change on the same machine: float results differ between
CPUs (AVX2, AVX-512), so the hashes are a same-machine comparison, not constants.
"""

from __future__ import annotations

import argparse
import tempfile

from dqn_lightning.learner.checkpoint_file import state_hash
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config

SHORT = ["--seed", "0", "--eval-episodes", "0", "--progress", "lines"]
MINATAR_SHORT = ["--total-timesteps", "3000", "--learning-starts", "1000"]
RUNS: dict[str, list[str]] = {
    # the default preset: bursts of 256 env steps then 128 updates, one batched target pass per burst
    "cartpole": ["--total-timesteps", "4000"],
    "cartpole-1+1": ["--total-timesteps", "3000", "--train-freq", "1", "--gradient-steps", "1"],
    "per-nstep3-double": ["--total-timesteps", "4000", "--prioritized", "--n-step", "3", "--double"],
    "minatar-rainbow": ["--preset", "minatar-rainbow", "--env", "MinAtar/Breakout-v0", *MINATAR_SHORT],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", choices=[*RUNS, []], help="which runs (default: all)")
    names = parser.parse_args().runs or list(RUNS)
    for name in names:
        with tempfile.TemporaryDirectory() as logdir:
            summary = train(parse_config([*RUNS[name], *SHORT, "--logdir", logdir]))
            print(
                f"{name:20s} {state_hash(summary['last_checkpoint'])}  ({summary['env_steps']} env steps)", flush=True
            )


if __name__ == "__main__":
    main()
