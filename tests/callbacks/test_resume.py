"""Kill a run with SIGKILL after a checkpoint, resume it, and get the uninterrupted run exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[2]
K = 600  # env step of the checkpoint run B resumes from
N = 4000  # env steps of the whole run
FLAGS = [
    sys.executable, str(ROOT / "scripts" / "train.py"), "--seed", "5", "--total-timesteps", str(N),
    "--learning-starts", "200", "--train-freq", "2", "--gradient-steps", "2", "--batch-size", "32",
    "--hidden-sizes", "[32, 32]", "--target-update-interval", "50", "--exploration-fraction", "0.5",
    "--eval-interval", "1000", "--eval-episodes", "2", "--checkpoint-interval", str(K), "--accelerator", "cpu",
]  # fmt: skip
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def scalars(run_dir: Path, tag: str) -> dict[int, float]:
    """step -> value; where a resumed run rewrote a step, the later write wins (TensorBoard's rule)."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


RECURRENT = ["--recurrent", "lstm", "--core-size", "16", "--sequence-length", "8", "--sequence-overlap", "4",
             "--burn-in", "2", "--n-step", "3", "--prioritized", "--double", "--total-timesteps", "2000"]  # fmt: skip


@pytest.mark.parametrize(
    "extra", [[], ["--rainbow", "--total-timesteps", "2000"], RECURRENT], ids=["dqn", "rainbow", "recurrent"]
)
def test_killed_run_resumes_exactly(tmp_path: Path, extra: list[str]) -> None:
    """Rainbow adds noisy layers (their noise and torch's generator), C51 and prioritized replay. The
    recurrent agent adds each env's acting state (killed mid-episode: the resumed loop must act from
    the checkpoint's states) and prioritized sequences.

    The runs carry 25 rounds (50 env steps) per Lightning batch (the automatic count: batch ends
    on every 200 env steps), so the kill lands inside a batch, and the resumed run must redo it.
    """
    flags = [*FLAGS, *extra]
    a = subprocess.run([*flags, "--logdir", "a"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert a.returncode == 0, a.stderr[-2000:]

    b = subprocess.Popen([*flags, "--logdir", "b"], cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)  # fmt: skip
    checkpoint = tmp_path / "b" / "CartPole-v1" / "version_0" / "checkpoints" / f"periodic-envstep{K}.ckpt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and b.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    b.send_signal(signal.SIGKILL)
    assert b.wait() == -signal.SIGKILL, "run B ended before it could be killed: raise N"
    assert checkpoint.with_name(f"replay-envstep{K}.npz").exists()  # the buffer was saved with it

    resumed = subprocess.run([*flags, "--logdir", "b", "--resume", str(checkpoint)], cwd=tmp_path, env=ENV,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    run_a, run_b = tmp_path / "a" / "CartPole-v1" / "version_0", tmp_path / "b" / "CartPole-v1" / "version_0"
    for tag, after in [("rollout/episode_return", K), ("rollout/episode_length", K), ("train/loss", 0)]:
        series_a, series_b = scalars(run_a, tag), scalars(run_b, tag)
        later = {s: v for s, v in series_a.items() if s > after}
        assert later and {s: series_b.get(s) for s in later} == later, tag
    weights_a, weights_b = final_weights(run_a), final_weights(run_b)
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
