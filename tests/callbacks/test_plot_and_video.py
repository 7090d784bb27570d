from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import run_train

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
TINY = ["--total-timesteps", "900", "--learning-starts", "100", "--train-freq", "4", "--gradient-steps", "4",
        "--batch-size", "32", "--hidden-sizes", "[16]", "--eval-interval", "400", "--eval-episodes", "2"]  # fmt: skip


def train(tmp_path: Path, *flags: str) -> None:
    result = run_train(*TINY, *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]


def test_eval_video_lands_in_tensorboard_as_an_animation(tmp_path: Path) -> None:
    train(tmp_path, "--eval-video", "true", "--logdir", "logs")
    events = EventAccumulator(str(tmp_path / "logs" / "CartPole-v1" / "version_0"), size_guidance={"images": 0})
    videos = events.Reload().Images("eval/video")
    assert [v.step for v in videos] == [500, 900]  # one per evaluation, at its env step
    gif = Image.open(io.BytesIO(videos[-1].encoded_image_string))
    assert gif.format == "GIF" and gif.n_frames > 5 and (gif.width, gif.height) == (300, 200)
    gif.seek(gif.n_frames // 2)
    assert np.asarray(gif.convert("RGB")).std() > 1.0  # a real picture, not a blank frame


def test_plot_draws_runs_grouped_by_preset(tmp_path: Path) -> None:
    for seed in ("0", "1"):
        train(tmp_path, "--seed", seed, "--logdir", "logs")
    out = tmp_path / "curves.png"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot.py"), "logs", "--out", str(out)],
                            cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 runs in 1 group(s)" in result.stdout
    image = Image.open(out)
    assert image.format == "PNG" and image.width > 800
    plot = [sys.executable, str(ROOT / "scripts" / "plot.py"), "logs", "--out", str(out)]
    marked = subprocess.run([*plot, "--reference", "500:195:a published run", "--reference", "900:475.5:another"],
                            cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert marked.returncode == 0 and "2 published result(s) marked" in marked.stdout, marked.stderr[-2000:]
    bad = subprocess.run([*plot, "--reference", "500:a lot"], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert bad.returncode == 2 and "--reference takes STEPS:RETURN:LABEL" in bad.stderr
    empty = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot.py"), str(tmp_path / "nothing")],
                           env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert empty.returncode == 2 and "no TensorBoard event files" in empty.stderr


def test_resume_last_finds_the_newest_checkpoint(tmp_path: Path) -> None:
    from dqn_lightning.callbacks.checkpointing import latest_checkpoint
    from dqn_lightning.run.config import parse_config

    train(tmp_path, "--logdir", "logs", "--checkpoint-interval", "300")
    newest = latest_checkpoint(tmp_path / "logs")
    assert newest.parent.name == "checkpoints" and newest.suffix == ".ckpt"
    config = parse_config(["--resume", "last", "--logdir", str(tmp_path / "logs"), "--total-timesteps", "1200"])
    # the run's own settings come back from its config.yaml; the new budget overrides them
    assert (config.resume, config.hidden_sizes, config.total_timesteps) == (str(newest), (16,), 1200)
    train(tmp_path, "--logdir", "logs", "--resume", str(newest), "--total-timesteps", "1200")
    summary = (tmp_path / "logs" / "CartPole-v1" / "version_0" / "summary.json").read_text()
    assert '"env_steps": 1200' in summary
