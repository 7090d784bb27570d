"""Fault injection: an env that raises, a NaN loss, Ctrl-C, an unwritable or full log folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dqn_lightning.errors import TrainingFault, exit_code
from tests.helpers import run_train

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, str(ROOT / "scripts" / "train.py")]
FAULTY = "tests.toy_envs:dqn-test/FaultyCartPole-v0"  # gymnasium imports toy_envs, which registers it
SMALL = ["--total-timesteps", "3000", "--learning-starts", "200", "--train-freq", "4", "--gradient-steps", "2",
         "--hidden-sizes", "[32, 32]", "--eval-episodes", "0", "--checkpoint-interval", "400",
         "--accelerator", "cpu"]  # fmt: skip


def env_with(fault: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(TESTS.parent)}
    if fault:
        env["DQN_TEST_FAULT"] = fault
    return env


def run(flags: list[str], cwd: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    """train.py in this process, with the toy env's injected fault (signals and DDP need a process)."""
    if fault:
        os.environ["DQN_TEST_FAULT"] = fault
    try:
        return run_train(*flags, cwd=cwd)
    finally:
        os.environ.pop("DQN_TEST_FAULT", None)


def one_line(stderr: str) -> str:
    """Our message: the last line, the only one from train.py, and no traceback (Lightning logs above it)."""
    lines = stderr.strip().splitlines()
    ours = [line for line in lines if line.startswith("train.py:")]
    assert len(ours) == 1 and lines[-1] == ours[0] and "Traceback" not in stderr, stderr[-3000:]
    return ours[0]


def checkpoints(tmp_path: Path, env: str = "tests.toy_envs:dqn-test_FaultyCartPole-v0") -> Path:
    return tmp_path / "logs" / env / "version_0" / "checkpoints"


def test_env_raising_in_step_stops_with_where_and_resumes(tmp_path: Path) -> None:
    result = run([*SMALL, "--env", FAULTY, "--logdir", "logs"], tmp_path, fault="step:1000")
    assert result.returncode == 1
    line = one_line(result.stderr)
    # the 1000th step of the training env is env step 999 done before it
    assert f"env {FAULTY} raised RuntimeError (injected failure in step #1000) in step at env step 999" in line
    assert "periodic-envstep800.ckpt: continue with --resume last" in line, line
    # the checkpoint is whole and resumable (the env behaves now)
    resumed = run(["--resume", "last", "--logdir", "logs"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((checkpoints(tmp_path).parent / "summary.json").read_text())
    assert summary["env_steps"] == 3000


def test_env_raising_in_reset_closes_the_envs(tmp_path: Path) -> None:
    from dqn_lightning.errors import TrainingFault
    from dqn_lightning.run import train
    from dqn_lightning.run.config import parse_config
    from tests.toy_envs import FaultyCartPole

    os.environ["DQN_TEST_FAULT"] = "reset:5"
    try:
        FaultyCartPole.instances.clear()
        config = parse_config([*SMALL, "--env", "dqn-test/FaultyCartPole-v0", "--num-envs", "2",
                               "--logdir", str(tmp_path / "logs")])  # fmt: skip
        with pytest.raises(TrainingFault, match=r"raised RuntimeError \(injected failure in reset #5\) in reset"):
            train(config)
    finally:
        del os.environ["DQN_TEST_FAULT"]
    assert len(FaultyCartPole.instances) >= 2 and all(env.closed for env in FaultyCartPole.instances)


def test_nan_loss_stops_at_once_naming_the_step(tmp_path: Path) -> None:
    result = run([*SMALL, "--env", FAULTY, "--logdir", "logs"], tmp_path, fault="nan:1000")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "the loss became nan at gradient step" in line and "periodic-envstep800.ckpt" in line, line
    # the step named is the first update that sampled a NaN reward: after env step 999, not later than 2 batches on
    env_step = int(line.split("(env step ")[1].split(")")[0])
    assert 1000 <= env_step <= 1008, line
    saved = torch.load(checkpoints(tmp_path) / "periodic-envstep800.ckpt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in saved.values())  # nothing spoiled was saved
    assert not (checkpoints(tmp_path) / f"periodic-envstep{(env_step // 400) * 400 + 400}.ckpt").exists()


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    # evaluations on but none due: stopping must not run one (Lightning evaluates when a run stops early)
    flags = [*SMALL, "--total-timesteps", "200000", "--logdir", "logs", "--eval-episodes", "2",
             "--eval-interval", "100000"]  # fmt: skip
    proc = subprocess.Popen([*TRAIN, *flags], cwd=tmp_path, env=env_with(None), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    first = tmp_path / "logs" / "CartPole-v1" / "version_0" / "checkpoints" / "periodic-envstep400.ckpt"
    deadline = time.monotonic() + 240
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    line = one_line(stderr)
    assert line.startswith("train.py: stopped by SIGINT at env step") and "continue with --resume last" in line
    stopped_at = int(line.split("env step ")[1].split(";")[0])
    last = first.with_name("last.ckpt")
    state = torch.load(last, weights_only=False)
    loop_state = next(v for k, v in state["callbacks"].items() if k.startswith("EnvLoop"))
    assert loop_state["env_steps"] == stopped_at >= 400
    assert first.with_name(f"replay-envstep{stopped_at}.npz").exists()  # buffer saved with it: exact resume
    events = EventAccumulator(str(first.parent.parent), size_guidance={"scalars": 0}).Reload()
    assert "eval/return_mean" not in events.Tags()["scalars"]  # no evaluation between Ctrl-C and the exit
    resumed = run(["--resume", "last", "--total-timesteps", str(stopped_at + 400), "--logdir", "logs"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((first.parent.parent / "summary.json").read_text())
    assert summary["env_steps"] == stopped_at + 400


def test_unwritable_logdir_fails_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run(["--logdir", str(blocker / "logs")], tmp_path)
    assert result.returncode == 2
    assert "cannot write to --logdir" in one_line(result.stderr)


def test_full_disk_fails_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from dqn_lightning import ConfigError
    from dqn_lightning.run import train
    from dqn_lightning.run.config import parse_config

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 << 30, 10 << 30, 5 << 20))  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"has 5 MiB free but this run needs about \d+ MiB"):
        train(parse_config(["--logdir", str(tmp_path / "logs")]))
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("step:600", f"rank 1: env {FAULTY} raised RuntimeError (injected failure in step #600) in step at env step"),
        ("nan:600", "rank 1: the loss became nan at gradient step"),
    ],
)
def test_fault_on_one_ddp_rank_stops_every_rank(tmp_path: Path, fault: str, expected: str) -> None:
    # rank 1 alone misbehaves; rank 0 must not wait for it in the next all-reduce until the
    # process group's 30-minute timeout, but stop with rank 1's line and exit status 1
    flags = [*SMALL, "--env", FAULTY, "--strategy", "ddp", "--devices", "2", "--logdir", "logs"]
    env = {**env_with(fault), "DQN_TEST_FAULT_RANK": "1"}
    result = subprocess.run([*TRAIN, *flags], cwd=tmp_path, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    line = one_line(result.stderr)
    assert line.startswith(f"train.py: error: {expected}"), line
    assert "periodic-envstep" in line and "continue with --resume last" in line, line  # the newest checkpoint named


@pytest.mark.parametrize(("environment", "prints"), [({"RANK": "0"}, True), ({"RANK": "1", "LOCAL_RANK": "0"}, False)])
def test_a_fault_is_printed_by_global_rank_zero_alone(
    environment: dict[str, str], prints: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # torchrun's second node: LOCAL_RANK 0 and no NODE_RANK, but RANK 1; every rank raises the same fault
    monkeypatch.delenv("NODE_RANK", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    def fail() -> None:
        raise TrainingFault("the loss became nan")

    assert exit_code("train.py", fail) == 1
    assert (capsys.readouterr().err == "train.py: error: the loss became nan\n") is prints
