"""MinAtar: ids that work with no user step, channels-first frames, the small-frame CNN, the optimizer setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_lightning import ConfigError, make_env, make_vector_env
from dqn_lightning.acting.minatar import ChannelsFirstFrames, render_frame
from dqn_lightning.learner.networks import MinAtarCNN, NatureCNN, QNetwork, build_q_network
from tests.helpers import load_script, run_train

ROOT = Path(__file__).resolve().parents[2]


def run_script(script: str, *flags: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, str(ROOT / "scripts" / script), *flags]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_channel_last_bool_frame_becomes_channels_first_uint8() -> None:
    env = ChannelsFirstFrames(make_env("MinAtar/Breakout-v1").unwrapped)
    frame = np.zeros((10, 10, 4), dtype=bool)
    frame[0, 3, 1] = True  # row 0, column 3, channel 1
    frame[9, 0, 3] = True
    frame[5, 5, 0] = frame[5, 5, 2] = True
    obs = env.observation(frame)
    assert obs.shape == (4, 10, 10) and obs.dtype == np.uint8
    assert obs[1, 0, 3] == 255 and obs[3, 9, 0] == 255 and obs[0, 5, 5] == 255 and obs[2, 5, 5] == 255
    assert int(obs.sum()) == 4 * 255  # nothing else is on
    assert env.observation_space.shape == (4, 10, 10) and env.observation_space.dtype == np.uint8


def test_ids_work_without_any_user_step_in_a_fresh_process() -> None:
    code = (
        "from dqn_lightning import make_env\n"
        "for v in ('v0', 'v1'):\n"
        "    env = make_env(f'MinAtar/Breakout-{v}')\n"
        "    obs, _ = env.reset(seed=0)\n"
        "    print(v, env.action_space.n, obs.shape, obs.dtype, sorted(set(obs.ravel().tolist())))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    # all 6 actions on v0 (the paper), Breakout's minimal set (noop, left, right) on v1
    assert out.splitlines() == ["v0 6 (4, 10, 10) uint8 [0, 255]", "v1 3 (4, 10, 10) uint8 [0, 255]"]


def test_episode_depends_only_on_its_seed_and_actions() -> None:
    # MinAtar carries the last action into the next episode's sticky draw; exact resume replays
    # an episode from its seed alone, so the wrapper clears it at reset
    env = make_env("MinAtar/SpaceInvaders-v0")
    actions = np.random.default_rng(0).integers(6, size=200)

    def play() -> list[bytes]:
        obs, _ = env.reset(seed=7)
        frames = [obs.tobytes()]
        for a in actions:
            obs, _, terminated, _, _ = env.step(int(a))
            frames.append(obs.tobytes())
            if terminated:
                break
        return frames

    first = play()
    env.reset(seed=3)
    env.step(5)  # leave another last action behind
    assert play() == first


def test_unknown_game_is_one_line_naming_the_games() -> None:
    with pytest.raises(ConfigError, match="Asterix, Breakout, Freeway, Seaquest, SpaceInvaders"):
        make_env("MinAtar/Pong-v1")


def test_rendered_frame_colours_each_channel() -> None:
    state = np.zeros((10, 10, 3), dtype=bool)
    state[2, 4, 0] = True
    state[2, 4, 2] = True  # the higher channel shows
    state[7, 1, 1] = True
    image = render_frame(state, scale=2)
    assert image.shape == (20, 20, 3) and image.dtype == np.uint8
    assert (image[4:6, 8:10] == image[4, 8]).all() and (image[14:16, 2:4] == image[14, 2]).all()
    assert len({tuple(image[4, 8]), tuple(image[14, 2]), tuple(image[0, 0])}) == 3
    assert tuple(image[0, 0]) == (0, 0, 0)


def test_network_is_chosen_by_observation_and_by_flag() -> None:
    assert isinstance(build_q_network((4, 10, 10), 6, (128,)), MinAtarCNN)
    assert isinstance(build_q_network((4, 84, 84), 6, (512,)), NatureCNN)
    assert isinstance(build_q_network((8,), 4, (64,)), QNetwork)
    assert isinstance(build_q_network((4, 10, 10), 6, (64,), network="mlp"), QNetwork)
    assert isinstance(build_q_network((4, 84, 84), 6, (64,), network="minatar-cnn"), MinAtarCNN)
    with pytest.raises(ConfigError, match="nature-cnn needs frames of at least 36x36, but these are 10x10"):
        build_q_network((4, 10, 10), 6, (128,), network="nature-cnn")
    with pytest.raises(ConfigError, match="needs image observations"):
        build_q_network((8,), 4, (64,), network="minatar-cnn")


def test_minatar_cnn_sizes_by_hand_and_pixel_scaling() -> None:
    net = MinAtarCNN((7, 10, 10), n_actions=5, hidden_sizes=(128,))
    # 16 filters of 3x3 on 10x10 without padding: 16 * 8 * 8 = 1024 features, then 128, then 5
    assert tuple(net.conv.weight.shape) == (16, 7, 3, 3)
    assert [tuple(m.weight.shape) for m in net.head._linears] == [(128, 1024), (5, 128)]
    frames = (torch.rand(3, 7, 10, 10) > 0.7).to(torch.uint8)
    assert torch.allclose(net(frames * 255), net(frames.float()))  # 255 is an active cell: 1.0
    dueling = MinAtarCNN((4, 10, 10), n_actions=3, dueling=True)
    assert dueling(torch.zeros(2, 4, 10, 10, dtype=torch.uint8)).shape == (2, 3)
    with pytest.raises(ValueError, match="MinAtarCNN needs frames of at least 3x3, got 2x10"):
        MinAtarCNN((4, 2, 10), 3)
    with pytest.raises(ValueError, match=r"MinAtarCNN needs \(channels, height, width\)"):
        MinAtarCNN((100,), 3)


def test_smoke_run_and_play_with_video(tmp_path: Path) -> None:
    flags = ["--preset", "minatar-breakout", "--total-timesteps", "600", "--learning-starts", "300"]
    flags += ["--eval-interval", "300", "--eval-episodes", "2", "--logdir", "logs"]
    result = run_script("train.py", *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(next((tmp_path / "logs").glob("*/version_0/summary.json")).read_text())
    assert summary["env"] == "MinAtar/Breakout-v0" and summary["env_steps"] == 600
    played = run_script("play.py", "--checkpoint", summary["last_checkpoint"], "--episodes", "1", "--video", "v",
                        cwd=tmp_path)  # fmt: skip
    assert played.returncode == 0, played.stderr[-2000:]
    assert "Game 1 Score" in played.stdout
    videos = list((tmp_path / "v").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env", "MinAtar/Breakout-v1", "--network", "nature-cnn"], "nature-cnn needs frames of at least 36x36"),
        (["--env", "MinAtar/Tetris-v0"], "unknown MinAtar env"),
        (["--rmsprop-alpha", "0.95"], "--rmsprop-alpha only applies to RMSprop: add --optimizer rmsprop"),
        (["--optimizer", "rmsprop", "--rmsprop-alpha", "1.5"], "alpha must be in (0, 1)"),
    ],
)
def test_bad_minatar_input_is_one_line_and_exit_2(tmp_path: Path, flags: list[str], message: str) -> None:
    result = run_train(*flags, "--total-timesteps", "2000", "--logdir", "logs", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr[-1000:]


def test_table_script_runs_a_recipe_records_the_row_and_tabulates_it(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    script = str(ROOT / "scripts" / "minatar_table.py")
    command = [sys.executable, script, "--recipes", "rainbow", "--games", "breakout", "--seeds", "3",
               "--out", str(tmp_path / "runs"), "--results", str(results), "--reeval-episodes", "2", "--",
               "--total-timesteps", "600", "--learning-starts", "200", "--eval-episodes", "1", "--quiet"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (row,) = json.loads(results.read_text())
    assert (row["recipe"], row["game"], row["seed"], row["env_steps"]) == ("rainbow", "breakout", 3, 600)
    assert row["cpu"] and row["best_greedy_mean"] is not None
    hparams = next((tmp_path / "runs").rglob("hparams.yaml")).read_text()
    assert "noisy: true" in hparams and "MinAtar/Breakout-v0" in hparams  # the minatar-rainbow recipe
    table = (tmp_path / "results.md").read_text()
    assert "| breakout | rainbow | 1 |" in table and (tmp_path / "results_curves.png").exists()


def test_paper_bursts_recipe_is_the_papers_with_four_updates_after_four_env_steps() -> None:
    train_flags = load_script("minatar_table").train_flags

    from dqn_lightning.run.config import parse_config

    bursts = parse_config(train_flags("paper-bursts", "freeway"))
    paper = parse_config(train_flags("paper", "freeway"))
    assert (paper.train_freq, paper.gradient_steps) == (1, 1) and (bursts.train_freq, bursts.gradient_steps) == (4, 4)
    assert bursts.env == paper.env == "MinAtar/Freeway-v0" and bursts.eps_end == paper.eps_end == 0.1
    assert parse_config(train_flags("ours", "freeway")).eps_end == 0.01


def test_rainbow_recipe_uses_one_step_returns_and_rainbow_n3_uses_rainbows_three() -> None:
    train_flags = load_script("minatar_table").train_flags

    from dqn_lightning.run.config import parse_config

    preset = parse_config(train_flags("rainbow", "asterix"))
    first = parse_config(train_flags("rainbow-n3", "asterix"))
    assert (preset.n_step, first.n_step) == (1, 3)
    # everything else Rainbow turns on is the same in both
    for config in (preset, first):
        assert (config.double, config.dueling, config.prioritized, config.noisy) == (True, True, True, True)
        assert config.distributional == "c51" and config.env == "MinAtar/Asterix-v0"


def test_table_script_turns_bad_train_flags_into_one_line_and_exit_2(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    command = [sys.executable, str(ROOT / "scripts" / "minatar_table.py"), "--recipes", "rainbow", "--games",
               "breakout", "--seeds", "0", "--out", str(tmp_path / "runs"), "--results", str(results), "--",
               "--atoms", "1"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minatar_table.py: error:") and "atoms" in lines[0], result.stderr
    assert not results.exists()  # nothing recorded for a run that never started


def test_a_v0_id_builds_without_gymnasiums_out_of_date_warning() -> None:
    # -v0 is the presets' choice on purpose (the paper's 6 actions): no warning about it in every log
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_env("MinAtar/Breakout-v0").close()
        make_vector_env("MinAtar/Breakout-v0", 2).close()
    assert not [w for w in caught if "out of date" in str(w.message)], [str(w.message) for w in caught]
