"""Speed at equal work on MinAtar Breakout: ours against Stable-Baselines3's DQN, the paper's recipe.

    python scripts/benchmark_minatar.py                 # 20,000 env steps per contender (a few minutes)
    python scripts/benchmark_minatar.py --steps 3000    # a quick look

One work unit for every contender: MinAtar/Breakout-v0 (its (4, 10, 10) frames as uint8 0/255),
the MinAtar CNN (16 3x3 filters, 128 units), batch 32, 100k replay, 5,000 random steps first (or
a quarter of --steps), then one update per env step, target copy every 1,000 updates, gamma
0.99, Huber loss, centred RMSprop (lr 2.5e-4, alpha 0.95, eps 0.01), epsilon 1 -> 0.1 over the
steps. Ours runs the `minatar-paper` preset through train.py's path, one env step then one
update (1+1: 50 such rounds per Lightning batch, the automatic count, and one per batch) and in
bursts of 4 env steps then 4 updates (4+4: the same work); SB3 (pip install
-e ".[bench]") gets the same network as a features extractor plus `net_arch=[128]`, and its
gradient clipping is set out of reach (the recipe has none). Prints env steps per second and
the ratios; the update floor, the env steps per second if all but the unit's updates were free
(the same network, batch, loss and optimizer on batches made beforehand, no env, no buffer, no
framework), the most any contender doing these updates could reach; and the peak RSS of a
filled 100,000-transition MinAtar buffer (Seaquest's 10 channels, the largest) measured in a
fresh process. Every contender runs --repeats times, alternating; medians are printed. Run it on
an idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dqn_lightning import make_env
from dqn_lightning.acting.envs import env_spaces
from dqn_lightning.learner.networks import build_q_network
from dqn_lightning.learner.optimizers import build_optimizer
from dqn_lightning.learner.td import q_of_actions, td_target
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config
from dqn_lightning.tools.machine import cpu_name

ENV = "MinAtar/Breakout-v0"


def random_steps(steps: int) -> int:
    """Env steps of random play before the first update: the recipe's 5,000, or a quarter of a short unit."""
    return min(5_000, steps // 4)


def ours(steps: int, burst: int, out: Path, rounds: int | None = None) -> float:
    """Env steps per second of the work unit through train.py's path, `rounds` rounds of (burst env
    steps, burst updates) per Lightning batch (None: the automatic count)."""
    start_learning = random_steps(steps)
    flags = ["--preset", "minatar-paper", "--env", ENV, "--total-timesteps", str(steps), "--learning-starts",
             str(start_learning), "--exploration-steps", str(steps), "--train-freq", str(burst), "--gradient-steps",
             str(burst), "--eval-episodes", "0", "--save-buffer", "never", "--quiet", "--logdir", str(out)]  # fmt: skip
    flags += ["--rounds-per-batch", str(rounds)] if rounds is not None else []
    summary = train(parse_config(flags))
    return summary["env_steps"] / summary["train_seconds"]


def sb3(steps: int) -> float:
    """Env steps per second of the work unit in Stable-Baselines3's DQN."""
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class MinAtarFeatures(BaseFeaturesExtractor):
        def __init__(self, observation_space, features_dim: int = 1024) -> None:  # type: ignore[no-untyped-def]
            super().__init__(observation_space, features_dim)
            channels, height, width = observation_space.shape
            self.net = nn.Sequential(nn.Conv2d(channels, 16, 3, 1), nn.ReLU(), nn.Flatten())
            self._features_dim = 16 * (height - 2) * (width - 2)

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.net(obs)

    policy_kwargs = dict(
        features_extractor_class=MinAtarFeatures,
        net_arch=[128],
        optimizer_class=torch.optim.RMSprop,
        optimizer_kwargs=dict(alpha=0.95, eps=0.01, centered=True),
    )
    model = SB3DQN("CnnPolicy", make_env(ENV), learning_rate=2.5e-4, buffer_size=100_000,
                   learning_starts=random_steps(steps), batch_size=32, gamma=0.99, train_freq=1, gradient_steps=1,
                   target_update_interval=1_000, exploration_fraction=1.0, exploration_final_eps=0.1,
                   max_grad_norm=1e9, policy_kwargs=policy_kwargs, seed=0, device="cpu", verbose=0)  # fmt: skip
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


def update_floor(steps: int, timed: int = 3_000) -> float:
    """Env steps per second if everything but the unit's updates took no time (an upper bound for anyone).

    Times `timed` of the recipe's updates (the `minatar-paper` preset's network, batch, loss,
    gamma and optimizer) in a bare loop on uint8 batches made beforehand: target forward, online
    forward, Huber loss, backward, optimizer step. Then scales to the unit's update count, one
    per env step after the random steps.
    """
    config = parse_config(["--preset", "minatar-paper", "--env", ENV])
    spaces = env_spaces(ENV)
    obs_shape, n_actions = spaces.obs_shape, spaces.n_actions
    torch.manual_seed(0)
    online = build_q_network(obs_shape, n_actions, config.hidden_sizes, network=config.network)
    target = build_q_network(obs_shape, n_actions, config.hidden_sizes, network=config.network)
    target.load_state_dict(online.state_dict())
    optimizer = build_optimizer(online.parameters(), config.optimizer, config.lr, config.optimizer_options())
    batch = config.batch_size
    frames = (torch.rand(64, 2, batch, *obs_shape) < 0.1).to(torch.uint8) * 255
    actions, rewards = torch.randint(0, n_actions, (64, batch)), torch.rand(64, batch)
    terminated = (torch.rand(64, batch) < 0.01).float()
    start = 0.0
    for i in range(timed + 100):  # the first 100 warm up
        if i == 100:
            start = time.perf_counter()
        j = i % 64
        obs, next_obs = frames[j]
        with torch.no_grad():
            y = td_target(rewards[j], terminated[j], target(next_obs), config.gamma)
        loss = F.smooth_l1_loss(q_of_actions(online(obs), actions[j]), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    per_update = (time.perf_counter() - start) / timed
    return steps / ((steps - random_steps(steps)) * per_update)


def buffer_peak_rss(transitions: int) -> int:
    """Peak RSS in bytes of a process holding a filled MinAtar Seaquest-sized buffer (run in a fresh process)."""
    code = (
        "import numpy as np, pathlib\n"
        "from dqn_lightning import ReplayBuffer\n"
        f"b = ReplayBuffer({transitions}, (10, 10, 10), np.uint8)\n"
        "rng = np.random.default_rng(0)\n"
        "o = (rng.random((1, 10, 10, 10)) < 0.1).astype(np.uint8) * 255\n"
        f"for t in range({transitions}):\n"
        "    b.add(o, np.zeros(1, np.int64), np.zeros(1), o, np.zeros(1, bool), np.zeros(1, bool))\n"
        "print([int(l.split()[1]) * 1024 for l in pathlib.Path('/proc/self/status').read_text().splitlines()"
        " if l.startswith('VmHWM')][0], b.nbytes)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--transitions", type=int, default=100_000, help="size of the memory probe's buffer")
    parser.add_argument("--out", type=Path, default=Path("lightning_logs/benchmark_minatar"))
    parser.add_argument("--repeats", type=int, default=3, help="rounds of all contenders, alternating")
    args = parser.parse_args()
    torch.set_num_threads(1)
    make_env(ENV).close()  # registers MinAtar, so SB3 finds the id too
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        contenders = {
            "ours 1+1": lambda: ours(args.steps, 1, Path(tmp)),  # interleaved: 50 rounds a batch
            "ours 1+1, 1 round a batch": lambda: ours(args.steps, 1, Path(tmp), 1),
            "ours 4+4": lambda: ours(args.steps, 4, Path(tmp)),
            "SB3 DQN": lambda: sb3(args.steps),
            "update floor": lambda: update_floor(args.steps),
        }
        # alternating, so that drifts in this machine's speed (seen up to 1.6x between minutes)
        # hit every contender alike; medians reported
        for repeat in range(args.repeats):
            for name, run in contenders.items():
                runs.setdefault(name, []).append(run())
                print(f"  {name}: run {repeat + 1}: {runs[name][-1]:.0f} env steps/s", flush=True)
    results = {name: statistics.median(values) for name, values in runs.items()}
    base = results["SB3 DQN"]
    print(f"\nMinAtar Breakout, paper recipe, {args.steps} env steps, {cpu_name()}, torch {torch.__version__}, "
          f"1 thread, median of {args.repeats}")  # fmt: skip
    print(f"{'contender':<26} {'env steps/s':>12} {'vs SB3':>8}")
    for name, sps in results.items():
        print(f"{name:<26} {sps:>12.0f} {sps / base:>7.2f}x")
    print("(update floor: the updates alone, no env, no buffer, no framework: nobody doing these updates passes it)")
    rss = buffer_peak_rss(args.transitions)
    print(f"peak RSS with a filled {args.transitions:,}-transition MinAtar buffer (10 channels): {rss / 2**20:.0f} MiB")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark_minatar.json").write_text(
        json.dumps({"steps": args.steps, "sps": results, "runs": runs, "buffer_peak_rss_bytes": rss}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
