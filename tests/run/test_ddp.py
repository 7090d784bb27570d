"""Lightning's DDP strategy with 2 CPU processes (gloo): per-rank envs, shared weights, one logger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

PROBE = Path(__file__).resolve().parent / "ddp_probe.py"


def _probe(tmp_path: Path, flags: list[str]) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, str(PROBE), str(tmp_path), *flags],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_cpu_processes_train_one_model_and_resume_each_ranks_buffer(tmp_path: Path) -> None:
    flags = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--total-timesteps", "2000",
             "--learning-starts", "400", "--train-freq", "4", "--gradient-steps", "3", "--target-update-interval",
             "10", "--eval-interval", "1000", "--eval-episodes", "3", "--hidden-sizes", "[32, 32]", "--noisy",
             "--logdir", str(tmp_path / "logs")]  # fmt: skip
    _probe(tmp_path, flags)
    ranks = [torch.load(tmp_path / f"rank-{r}.pt") for r in (0, 1)]
    # both ranks stepped their own envs: 2000 env steps over all ranks, 1000 each, with different data
    assert ranks[0]["env_steps"] == ranks[1]["env_steps"] == 2000
    assert ranks[0]["local_episodes"] > 0 and ranks[1]["local_episodes"] > 0
    assert not torch.equal(ranks[0]["first_obs"], ranks[1]["first_obs"])  # seeds seed + rank
    # (1000 - 200) local env steps after warm-up / train_freq 4 = 200 batches of 3 updates
    assert ranks[0]["gradient_step"] == ranks[1]["gradient_step"] == 600
    # DDP averaged the gradients, so different data still gives identical weights, and target copies too
    for name in ("online", "target"):
        for a, b in zip(ranks[0][name], ranks[1][name], strict=True):
            assert torch.equal(a, b), name
    summary = json.loads((tmp_path / "summary-rank0.json").read_text())
    assert summary["world_size"] == 2
    assert summary["episodes"] == ranks[0]["local_episodes"] + ranks[1]["local_episodes"]
    # one writer: a single run directory with one event file, each metric once per step
    run_dirs = list((tmp_path / "logs" / "CartPole-v1").iterdir())
    assert [d.name for d in run_dirs] == ["version_0"]
    assert len(list(run_dirs[0].glob("events.out.tfevents.*"))) == 1
    events = EventAccumulator(str(run_dirs[0])).Reload()
    eval_steps = [e.step for e in events.Scalars("eval/return_mean")]
    # evaluated by rank 0 alone, every 1000 env steps over all ranks after the 400 warm-up, and at the end
    assert eval_steps == [1400, 2000]
    returns = events.Scalars("rollout/episode_return")
    assert len({e.step for e in returns}) == len(returns) > 0  # one aggregated point per log interval
    checkpoints = sorted(p.name for p in (run_dirs[0] / "checkpoints").iterdir())
    # every rank's replay file of the last checkpoint survives the others' pruning
    assert {"last.ckpt", "replay-envstep2000.npz", "replay-envstep2000-rank1.npz"} <= set(checkpoints)
    # each rank its own noise stream (the same one would waste the second rank's samples)
    assert ranks[0]["noise_seed"] != ranks[1]["noise_seed"]

    # resumed, each rank reads its own replay file back: nothing refilled, its first transitions kept
    last = run_dirs[0] / "checkpoints" / "last.ckpt"
    _probe(tmp_path, [*flags[: flags.index("--total-timesteps") + 1], "2400",
                      *flags[flags.index("--total-timesteps") + 2 :], "--resume", str(last)])  # fmt: skip
    resumed = [torch.load(tmp_path / f"resumed-rank-{r}.pt") for r in (0, 1)]
    for before, after in zip(ranks, resumed, strict=True):
        assert after["env_steps"] == 2400
        assert after["learning_starts"] == 400  # a refill would have raised it to 2000 + 400
        assert after["buffer_size"] == before["buffer_size"] + 200  # 1000 + 200 local steps, none lost
        assert torch.equal(after["first_obs"], before["first_obs"])
        assert after["noise_seed"] == before["noise_seed"]  # each rank's own stream came back


def test_a_recurrent_agent_under_ddp_keeps_each_ranks_acting_states(tmp_path: Path) -> None:
    flags = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--total-timesteps", "1200",
             "--learning-starts", "400", "--train-freq", "4", "--batch-size", "16", "--target-update-interval", "10",
             "--eval-interval", "1200", "--eval-episodes", "2", "--hidden-sizes", "[16]", "--recurrent", "lstm",
             "--core-size", "8", "--sequence-length", "8", "--sequence-overlap", "4", "--burn-in", "2",
             "--prioritized", "--logdir", str(tmp_path / "logs")]  # fmt: skip
    _probe(tmp_path, flags)
    ranks = [torch.load(tmp_path / f"rank-{r}.pt") for r in (0, 1)]
    for a, b in zip(ranks[0]["online"], ranks[1]["online"], strict=True):
        assert torch.equal(a, b)  # one model
    assert ranks[0]["gradient_step"] == ranks[1]["gradient_step"] > 0
    # each rank acted in its own episodes with its own states, and kept them with its own steps
    assert not torch.equal(ranks[0]["stored_states"], ranks[1]["stored_states"])
    assert ranks[0]["stored_states"].abs().sum() > 0 and ranks[0]["memory"].shape == (1, 16)
