"""Speed of dqn-lightning against a bare PyTorch loop and Stable-Baselines3, on this machine.

    python scripts/benchmark.py                       # full run (about 15 minutes on 2 cores)
    python scripts/benchmark.py --quick               # a tiny smoke run of every part
    python scripts/benchmark.py --skip-solve          # throughput only

1. Equal-work throughput. One work unit for every contender: CartPole-v1, one env, 20,000 env
   steps, learning from step 1,000, one gradient step per env step, batch 64, MLP 128-128,
   Adam 1e-3, gamma 0.99, MSE, hard target copy every 500 gradient steps, epsilon 1.0 -> 0.05
   over the first 10,000 steps, buffer 50,000. Contenders: our train.py path (Trainer,
   callbacks, dataset, logging at its defaults; evaluation off, as the others have none)
   interleaving 1 env step and 1 update (50 such rounds per Lightning batch, the automatic
   count, and one per batch), and in bursts of 8 (and 32) env steps then as many updates; the bare
   single-process loop below; SB3's DQN matched to the unit (if installed; it uses Huber
   loss, which it does not let one change). Env steps per second: median of --repeats runs,
   contenders alternating.
2. Time to solve CartPole-v1: our `cartpole` preset and SB3 with the RL Zoo's CartPole-v1
   hyperparameters, seeds 0..4: env steps and training seconds (evaluation excluded) until
   the greedy mean over 20 episodes, evaluated every ~2,000 env steps, is >= 475 twice in a row.
3. Learning curves of (2) against env steps and seconds: benchmark.png beside benchmark.json.
4. Peak memory (RSS), each in a fresh process: the imports alone, the work unit through our
   path, and a 100,000-transition Atari replay buffer (frame-stacked Pong-sized frames, each kept
   once) filled to capacity.

Prints a table with the ratios and writes --out/benchmark.json. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dqn_lightning.callbacks.stopping import StopAtThreshold
from dqn_lightning.run import train
from dqn_lightning.run.config import parse_config
from dqn_lightning.tools.machine import cpu_name

UNIT = dict(steps=20_000, learning_starts=1_000, batch=64, hidden=128, lr=1e-3, gamma=0.99, target_every=500,
            eps_start=1.0, eps_end=0.05, eps_steps=10_000, buffer=50_000)  # fmt: skip
SOLVE_THRESHOLD = 475.0


# ---- 1. equal-work throughput -------------------------------------------------------------------


def bare_loop(unit: dict[str, Any], seed: int) -> float:
    """The reference: the work unit as a plain eager PyTorch loop. Returns seconds."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = gym.make("CartPole-v1")
    n_obs, n_act, h = 4, 2, unit["hidden"]
    q = nn.Sequential(nn.Linear(n_obs, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, n_act))
    target = nn.Sequential(nn.Linear(n_obs, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, n_act))
    target.load_state_dict(q.state_dict())
    opt = torch.optim.Adam(q.parameters(), lr=unit["lr"], fused=True)
    cap = unit["buffer"]
    obs_buf, next_buf = np.zeros((cap, n_obs), np.float32), np.zeros((cap, n_obs), np.float32)
    act_buf, rew_buf, term_buf = np.zeros(cap, np.int64), np.zeros(cap, np.float32), np.zeros(cap, np.float32)
    start = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    updates = 0
    for step in range(unit["steps"]):
        eps = max(unit["eps_end"], unit["eps_start"] - step / unit["eps_steps"] * (unit["eps_start"] - unit["eps_end"]))
        if step < unit["learning_starts"] or rng.random() < eps:
            action = int(rng.integers(n_act))
        else:
            with torch.no_grad():
                action = int(q(torch.from_numpy(obs)[None]).argmax(1)[0])
        next_obs, reward, terminated, truncated, _ = env.step(action)
        i = step % cap
        obs_buf[i], next_buf[i], act_buf[i], rew_buf[i], term_buf[i] = obs, next_obs, action, reward, terminated
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
        if step >= unit["learning_starts"]:
            idx = rng.choice(min(step + 1, cap), unit["batch"], replace=False)
            o, a, r = torch.from_numpy(obs_buf[idx]), torch.from_numpy(act_buf[idx]), torch.from_numpy(rew_buf[idx])
            n, d = torch.from_numpy(next_buf[idx]), torch.from_numpy(term_buf[idx])
            with torch.no_grad():
                y = r + unit["gamma"] * (1 - d) * target(n).max(1).values
            loss = F.mse_loss(q(o).gather(1, a[:, None]).squeeze(1), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            updates += 1
            if updates % unit["target_every"] == 0:
                target.load_state_dict(q.state_dict())
    return time.perf_counter() - start


def ours(unit: dict[str, Any], seed: int, burst: int, out: Path, rounds: int | None = None) -> float:
    """The work unit through scripts/train.py's path, `rounds` rounds of (burst env steps, burst
    updates) per Lightning batch (None: the automatic count). Returns training seconds."""
    flags = ["--total-timesteps", unit["steps"], "--learning-starts", unit["learning_starts"], "--train-freq", burst,
             "--gradient-steps", burst, "--batch-size", unit["batch"], "--hidden-sizes", f"[{unit['hidden']}, "
             f"{unit['hidden']}]", "--lr", unit["lr"], "--gamma", unit["gamma"], "--target-update-interval",
             unit["target_every"], "--eps-start", unit["eps_start"], "--eps-end", unit["eps_end"],
             "--exploration-steps", unit["eps_steps"], "--buffer-size", unit["buffer"], "--eval-episodes", 0,
             "--seed", seed, "--logdir", out / "runs", "--accelerator", "cpu"]  # fmt: skip
    flags += ["--rounds-per-batch", rounds] if rounds is not None else []
    summary = train(parse_config([str(f) for f in flags]))
    return float(summary["train_seconds"])


def sb3(unit: dict[str, Any], seed: int) -> float:
    """SB3's DQN matched to the work unit. Returns seconds in learn()."""
    from stable_baselines3 import DQN as SB3DQN

    model = SB3DQN("MlpPolicy", gym.make("CartPole-v1"), learning_rate=unit["lr"], buffer_size=unit["buffer"],
                   learning_starts=unit["learning_starts"], batch_size=unit["batch"], gamma=unit["gamma"],
                   train_freq=1, gradient_steps=1, target_update_interval=unit["target_every"],
                   exploration_initial_eps=unit["eps_start"], exploration_final_eps=unit["eps_end"],
                   exploration_fraction=unit["eps_steps"] / unit["steps"], max_grad_norm=1e10,
                   policy_kwargs=dict(net_arch=[unit["hidden"], unit["hidden"]]), seed=seed, device="cpu")  # fmt: skip
    start = time.perf_counter()
    model.learn(total_timesteps=unit["steps"])
    return time.perf_counter() - start


def has_sb3() -> bool:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


def throughput(unit: dict[str, Any], repeats: int, out: Path) -> dict[str, dict[str, Any]]:
    one_plus_one = "dqn-lightning, 1 env step + 1 update"
    contenders = {"bare PyTorch loop": lambda s: bare_loop(unit, s),
                  f"{one_plus_one}, interleaved (50 rounds a batch)": lambda s: ours(unit, s, 1, out),
                  f"{one_plus_one}, one round a batch": lambda s: ours(unit, s, 1, out, 1),
                  "dqn-lightning, bursts of 8 + 8": lambda s: ours(unit, s, 8, out),
                  "dqn-lightning, bursts of 32 + 32": lambda s: ours(unit, s, 32, out)}  # fmt: skip
    if has_sb3():
        contenders["Stable-Baselines3 DQN"] = lambda s: sb3(unit, s)
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for repeat in range(repeats):  # alternate contenders so drifts in machine speed hit all alike
        for name, run in contenders.items():
            seconds[name].append(run(repeat))
            print(f"  {name}: run {repeat + 1}: {unit['steps'] / seconds[name][-1]:.0f} env steps/s", flush=True)
    return {name: {"seconds": s, "sps": unit["steps"] / statistics.median(s)} for name, s in seconds.items()}


# ---- 2. time to solve ---------------------------------------------------------------------------


def solved_at(evaluations: list[dict[str, float]]) -> dict[str, float] | None:
    """The second of the first two consecutive evaluations at or above the threshold."""
    for before, now in itertools.pairwise(evaluations):
        if before["return_mean"] >= SOLVE_THRESHOLD and now["return_mean"] >= SOLVE_THRESHOLD:
            return now
    return None


def ours_to_solve(seed: int, total: int, out: Path) -> dict[str, Any]:
    flags = ["--preset", "cartpole", "--seed", str(seed), "--total-timesteps", str(total), "--eval-episodes", "20",
             "--logdir", str(out / "solve"), "--accelerator", "cpu"]  # fmt: skip
    summary = train(parse_config(flags), callbacks=[StopAtThreshold(SOLVE_THRESHOLD, consecutive=2)])
    return {"evaluations": summary["evaluations"], "solved": solved_at(summary["evaluations"])}


def sb3_to_solve(seed: int, total: int) -> dict[str, Any]:
    """SB3 with the RL Zoo's CartPole-v1 DQN hyperparameters, evaluated like ours."""
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.callbacks import BaseCallback

    from dqn_lightning import evaluate, make_vector_env
    from dqn_lightning.acting.evaluation import episode_seeds

    eval_env = make_vector_env("CartPole-v1", 20)

    class Evaluate(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, float]] = []
            self.eval_seconds = 0.0
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps % 2_000 != 0:
                return True
            t0 = time.perf_counter()
            returns = evaluate(lambda o: self.model.predict(o, deterministic=True)[0], eval_env,
                               episode_seeds(seed, self.num_timesteps, 20))  # fmt: skip
            self.eval_seconds += time.perf_counter() - t0
            seconds = time.perf_counter() - self.start - self.eval_seconds
            self.rows.append({"env_steps": self.num_timesteps, "train_seconds": seconds,
                              "return_mean": float(returns.mean()), "return_std": float(returns.std())})  # fmt: skip
            return solved_at(self.rows) is None

    model = SB3DQN("MlpPolicy", gym.make("CartPole-v1"), learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                   learning_starts=1_000, gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
                   exploration_fraction=0.16, exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]),
                   seed=seed, device="cpu")  # fmt: skip
    callback = Evaluate()
    model.learn(total_timesteps=total, callback=callback)
    eval_env.close()
    return {"evaluations": callback.rows, "solved": solved_at(callback.rows)}


def time_to_solve(seeds: list[int], total: int, out: Path) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {"dqn-lightning (cartpole preset)": {}}
    if has_sb3():
        results["Stable-Baselines3 (RL Zoo hyperparameters)"] = {}
    for seed in seeds:
        results["dqn-lightning (cartpole preset)"][str(seed)] = ours_to_solve(seed, total, out)
        if has_sb3():
            results["Stable-Baselines3 (RL Zoo hyperparameters)"][str(seed)] = sb3_to_solve(seed, total)
    for per_seed in results.values():
        solved = [r["solved"] for r in per_seed.values()]
        per_seed["median_seconds"] = statistics.median(s["train_seconds"] if s else float("inf") for s in solved)
        per_seed["median_steps"] = statistics.median(s["env_steps"] if s else float("inf") for s in solved)
        per_seed["solved_seeds"] = sum(s is not None for s in solved)
    return results


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for color, (name, per_seed) in zip(["C0", "C1"], results.items(), strict=False):
        for i, (_, run) in enumerate((k, v) for k, v in per_seed.items() if isinstance(v, dict)):
            rows = run["evaluations"]
            for ax, key in zip(axes, ["env_steps", "train_seconds"], strict=True):
                ax.plot([r[key] for r in rows], [r["return_mean"] for r in rows], color=color, alpha=0.7,
                        label=name if i == 0 else None)  # fmt: skip
    for ax, label in zip(axes, ["env steps", "training seconds (evaluation excluded)"], strict=True):
        ax.axhline(SOLVE_THRESHOLD, color="gray", linestyle="--", linewidth=1)
        ax.set(xlabel=label, ylabel="greedy eval return (20 episodes)", title=f"CartPole-v1, to {label}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---- 4. memory ----------------------------------------------------------------------------------


def memory_probe(kind: str, unit: dict[str, Any], transitions: int, out: Path) -> dict[str, Any]:
    """Runs one memory probe in this process (a fresh one: see `peak_memory`)."""
    result: dict[str, Any] = {}
    if kind == "work-unit":
        ours(unit, 0, 32, out)
    elif kind == "atari-buffer":
        from dqn_lightning import ReplayBuffer

        buffer = ReplayBuffer(transitions, (4, 84, 84), np.uint8, store_frames=True)
        rng = np.random.default_rng(0)
        stack = rng.integers(0, 256, (4, 84, 84), dtype=np.uint8)
        for t in range(transitions):  # episodes of 1,000 steps, each frame new
            ended = (t + 1) % 1_000 == 0
            nxt = np.concatenate([stack[1:], rng.integers(0, 256, (1, 84, 84), dtype=np.uint8)])
            buffer.add(stack[None], [0], [0.0], nxt[None], [float(ended)])
            stack = rng.integers(0, 256, (4, 84, 84), dtype=np.uint8) if ended else nxt
        result["buffer_bytes"] = buffer.nbytes
    # VmHWM, not getrusage's ru_maxrss: that one survives exec, so a child started by a big
    # parent reports the parent's size
    result["peak_rss_bytes"] = _proc_status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["rss_now_bytes"] = _proc_status("VmRSS")
    return result


def _proc_status(field: str) -> int:
    """A memory field of /proc/self/status in bytes (Linux; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024  # the file says kB: KiB
    except OSError:
        pass
    return 0


def peak_memory(unit: dict[str, Any], transitions: int, out: Path) -> dict[str, dict[str, Any]]:
    """Peak RSS of each probe, each in its own fresh Python process."""
    results = {}
    for kind in ("imports only", "work-unit", "atari-buffer"):
        command = [sys.executable, __file__, "--memory-probe", kind, "--out", str(out), "--atari-transitions",
                   str(transitions), *(["--quick"] if unit["steps"] < UNIT["steps"] else [])]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {kind}: peak RSS {results[kind]['peak_rss_bytes'] / 2**20:.0f} MiB, "
              f"at the end {results[kind]['rss_now_bytes'] / 2**20:.0f} MiB", flush=True)  # fmt: skip
    return results


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("lightning_logs/benchmark"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks that every part runs")
    parser.add_argument("--skip-solve", action="store_true")
    parser.add_argument("--atari-transitions", type=int, default=None, help="size of the memory probe's buffer")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)  # internal: one probe
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    unit = dict(UNIT, steps=1_500, learning_starts=500, eps_steps=700) if args.quick else dict(UNIT)
    transitions = args.atari_transitions or (2_000 if args.quick else 100_000)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, unit, transitions, args.out)))
        return
    repeats, seeds, total = (1, args.seeds[:1], 3_000) if args.quick else (args.repeats, args.seeds, 50_000)

    print(f"1. equal-work throughput ({unit['steps']} env steps, median of {repeats})", flush=True)
    speed = throughput(unit, repeats, args.out)
    bare = speed["bare PyTorch loop"]["sps"]
    report = {"machine": f"{cpu_name()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}",
              "work_unit": unit, "throughput": speed}  # fmt: skip
    lines = ["", "| contender | env steps/s | vs bare loop | vs SB3 |", "|---|---:|---:|---:|"]
    sb3_sps = speed.get("Stable-Baselines3 DQN", {}).get("sps")
    for name, row in speed.items():
        vs_sb3 = f"{row['sps'] / sb3_sps:.2f}x" if sb3_sps else "-"
        lines.append(f"| {name} | {row['sps']:.0f} | {row['sps'] / bare:.2f}x | {vs_sb3} |")
    if not args.skip_solve:
        print(f"2. time to solve CartPole-v1 (seeds {seeds})", flush=True)
        solve = time_to_solve(seeds, total, args.out)
        report["time_to_solve"] = solve
        lines += ["", "| time to solve CartPole-v1 | seeds solved | median env steps | median train seconds |",
                  "|---|---:|---:|---:|"]  # fmt: skip
        for name, res in solve.items():
            lines.append(f"| {name} | {res['solved_seeds']}/{len(seeds)} | {res['median_steps']} "
                         f"| {res['median_seconds']:.1f} |")  # fmt: skip
        plot(solve, args.out / "benchmark.png")
    print(f"4. peak memory (RSS), each in a fresh process; Atari buffer of {transitions} transitions", flush=True)
    memory = peak_memory(unit, transitions, args.out)
    report["memory"] = memory
    lines += ["", "| memory (fresh process) | peak RSS | RSS at the end | replay storage |", "|---|---:|---:|---:|"]
    for name, row in memory.items():
        storage = f"{row['buffer_bytes'] / 2**20:.0f} MiB" if "buffer_bytes" in row else "-"
        lines.append(f"| {name} | {row['peak_rss_bytes'] / 2**20:.0f} MiB | {row['rss_now_bytes'] / 2**20:.0f} MiB "
                     f"| {storage} |")  # fmt: skip
    table = "\n".join(lines)
    report["table"] = table
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"{report['machine']}\n{table}\n\nwrote {args.out / 'benchmark.json'}")


if __name__ == "__main__":
    main()
