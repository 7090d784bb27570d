"""What one Atari update costs on this CPU: the Nature CNN at batch 32, by threads, memory format and precision.

    python scripts/benchmark_atari_update.py               # 30 timed updates per row (about 3 minutes)

An update as our learner makes it on `(4, 84, 84)` uint8 frame stacks: the target network's
pass on the next observations (and the online network's, for Double DQN), the online pass,
the loss, backward and an Adam step. Rows: the `pong` preset's network (Nature CNN, 512 units)
and the `pong-fast` preset's (dueling, noisy, Double DQN), each with 1 and 2 torch threads,
with the weights and frames in channels-last memory format or not (`--channels-last`), and in
float32 or under bfloat16 autocast (`--precision bf16-mixed`: fast only on CPUs with AVX-512
bf16 instructions); plus the greedy action for one observation (acting, in float32). Prints
milliseconds per update (median of 3 blocks) and writes nothing. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from dqn_lightning.learner.module import DQN
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.tools.machine import cpu_name

RECIPES: dict[str, dict[str, Any]] = {  # label: DQN options of the preset's network and update
    "pong (Nature DQN)": {"loss": "huber"},
    "pong-fast (dueling, noisy, double)": {"loss": "huber", "dueling": True, "noisy": True, "double": True},
}


def time_update(
    options: dict[str, Any], threads: int, channels_last: bool, bf16: bool, timed: int
) -> tuple[float, float]:
    """(ms per update, ms per greedy action for one observation)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = DQN(obs_shape=(4, 84, 84), n_actions=6, hidden_sizes=(512,), target_update_interval=1000, **options)
    optimizer = torch.optim.Adam(model.q_network.parameters(), lr=1e-4)
    frames = torch.randint(0, 256, (2, 32, 4, 84, 84), dtype=torch.uint8)
    if channels_last:  # what --channels-last does (ChannelsLast): the CNN then converts the frames it gets
        model = model.to(memory_format=torch.channels_last)
    obs, next_obs = frames
    action, reward, terminated = torch.randint(0, 6, (32,)), torch.rand(32), torch.zeros(32)

    def update() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # as Lightning's bf16-mixed on the CPU
            batch = ReplayBatch(obs, action, reward, next_obs, terminated)
            loss = model.td_loss(batch, model.td_target(batch)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        update()
    blocks = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(timed // 3):
            update()
        blocks.append((time.perf_counter() - start) / (timed // 3) * 1000)
    one = obs[:1].numpy()
    start = time.perf_counter()
    for _ in range(50):
        model.act(one)
    return statistics.median(blocks), (time.perf_counter() - start) / 50 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=30, help="timed updates per row")
    args = parser.parse_args()
    print(f"{cpu_name()}, torch {torch.__version__}")
    print("| network | torch threads | channels-last | precision | ms per update | ms per action |")
    print("|---|---:|---|---|---:|---:|")
    for label, options in RECIPES.items():
        for threads in (1, 2):
            for channels_last in (False, True):
                for bf16 in (False, True):
                    update_ms, act_ms = time_update(options, threads, channels_last, bf16, args.updates)
                    memory, precision = "yes" if channels_last else "no", "bf16-mixed" if bf16 else "32-true"
                    row = f"| {label} | {threads} | {memory} | {precision} | {update_ms:.1f} | {act_ms:.2f} |"
                    print(row, flush=True)


if __name__ == "__main__":
    main()
