"""Measures DDP throughput scaling on CPU processes: the same run with 1 and with N processes.

    python scripts/ddp_scaling.py                      # cartpole preset, 20,000 env steps, 1 vs 2 processes
    python scripts/ddp_scaling.py --processes 1 2 4 --total-timesteps 40000

Each run is `scripts/train.py --accelerator cpu --devices N --strategy ddp` (plain single-process
for N = 1), evaluation off; the table gives env steps per second over all ranks (training time
only) and gradient updates per second, each the median of --repeats runs, and the ratio to N = 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TRAIN = Path(__file__).resolve().parent / "train.py"


def run(processes: int, steps: int, preset: str, logdir: Path) -> dict[str, float]:
    flags = ["--preset", preset, "--total-timesteps", str(steps), "--eval-episodes", "0", "--logdir", str(logdir),
             "--accelerator", "cpu", "--devices", str(processes)]  # fmt: skip
    if processes > 1:
        flags += ["--strategy", "ddp"]
    subprocess.run([sys.executable, str(TRAIN), *flags], check=True, capture_output=True, text=True)
    summary = json.loads(next(logdir.glob("*/version_0/summary.json")).read_text())
    seconds = summary["train_seconds"]
    # every rank trains on its own minibatch in each (averaged) update
    return {"sps": summary["env_steps"] / seconds, "updates_per_s": summary["gradient_steps"] * processes / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--total-timesteps", type=int, default=20_000)
    parser.add_argument("--preset", default="cartpole")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict[int, list[dict[str, float]]] = {n: [] for n in args.processes}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # alternate process counts, so drift hits all alike
            for n in args.processes:
                row = run(n, args.total_timesteps, args.preset, Path(tmp) / f"n{n}-r{repeat}")
                results[n].append(row)
                print(f"  repeat {repeat}: {n} process(es): {row['sps']:.0f} env steps/s", flush=True)
    base = statistics.median(r["sps"] for r in results[args.processes[0]])
    print(f"\n{'processes':>9}  {'env steps/s':>11}  {'minibatches/s':>13}  {'vs first':>8}")
    for n in args.processes:
        sps = statistics.median(r["sps"] for r in results[n])
        ups = statistics.median(r["updates_per_s"] for r in results[n])
        print(f"{n:>9}  {sps:>11.0f}  {ups:>13.0f}  {sps / base:>7.2f}x")


if __name__ == "__main__":
    main()
