"""Atari: the standard preprocessing, the Nature CNN picked for images, and a run through train.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_lightning import DQN, ConfigError, make_env
from dqn_lightning.learner.cnn import DATA_EFFICIENT_LAYERS, NATURE_LAYERS, NATURE_MIN_FRAME, min_frame
from dqn_lightning.learner.networks import DataEfficientCNN, NatureCNN, QNetwork, build_q_network
from tests.run.test_train_script import run_train


def test_training_env_preprocesses_clips_and_ends_episodes_at_a_lost_life() -> None:
    env = make_env("ALE/Breakout-v5", training=True)
    assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
    obs, _ = env.reset(seed=3)
    ale = env.unwrapped.ale
    assert ale.lives() == 5 and obs.shape == (4, 84, 84)
    rewards, episodes = set(), 0
    for _ in range(3000):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        rewards.add(float(reward))
        if terminated or truncated:
            episodes += 1
            lives = ale.lives()
            obs, _ = env.reset()
            if episodes == 1:  # a lost life, not game over: the game goes on from where it was
                assert lives == 4 and ale.lives() == 4
            if ale.lives() == 5:
                break
    assert episodes == 5  # one per life, then a new game
    assert rewards <= {-1.0, 0.0, 1.0}
    env.close()


def test_evaluation_env_plays_whole_games_with_raw_scores() -> None:
    env = make_env("ALE/Breakout-v5")
    env.reset(seed=3)
    total, steps = 0.0, 0
    while True:
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total, steps = total + float(reward), steps + 1
        if terminated or truncated:
            break
    assert env.unwrapped.ale.lives() == 0 and terminated  # the game ran through all five lives
    env.close()


def test_ale_arguments_reach_the_game_but_frameskip_stays_the_preprocessings() -> None:
    sticky = make_env("ALE/Breakout-v5")
    plain = make_env("ALE/Breakout-v5", repeat_action_probability=0.0)
    # v5 ids are sticky (Machado et al.: 0.25); the argument turns that off in the emulator itself
    assert sticky.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    assert plain.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    sticky.close()
    plain.close()
    with pytest.raises(ConfigError, match="frameskip is fixed at 4"):
        make_env("ALE/Breakout-v5", frameskip=4)


def test_nature_cnn_sizes_from_the_observation_space_and_scales_pixels_inside() -> None:
    for shape, flat in (((4, 84, 84), 64 * 7 * 7), ((3, 64, 48), 64 * 4 * 2)):
        net = NatureCNN(shape, n_actions=5)
        assert net.head.layers[0].in_features == flat
        pixels = torch.randint(0, 256, (2, *shape), dtype=torch.uint8)
        assert torch.allclose(net(pixels), net(pixels.float() / 255.0))
    with pytest.raises(ValueError, match="at least 36x36"):
        NatureCNN((4, 20, 20), 2)


def test_the_data_efficient_cnn_has_ders_two_convolutions_and_smallest_frame() -> None:
    net = DataEfficientCNN((4, 84, 84), n_actions=5)
    convs = [m for m in net.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (4, 32, (5, 5), (5, 5)), (32, 64, (5, 5), (5, 5))]  # fmt: skip
    assert net.head.layers[0].in_features == 64 * 3 * 3  # 84 -> 16 -> 3 pixels a side
    assert min_frame(NATURE_LAYERS) == NATURE_MIN_FRAME == 36 and min_frame(DATA_EFFICIENT_LAYERS) == 25
    assert DataEfficientCNN((4, 25, 25), 2)(torch.zeros(1, 4, 25, 25)).shape == (1, 2)
    with pytest.raises(ConfigError, match="at least 25x25"):
        build_q_network((4, 24, 24), 2, (256,), network="data-efficient-cnn")


def test_images_get_the_cnn_and_vectors_the_mlp() -> None:
    assert isinstance(DQN(obs_shape=(4, 84, 84), n_actions=6, hidden_sizes=(512,)).q_network, NatureCNN)
    assert isinstance(DQN(obs_shape=(4,), n_actions=2).q_network, QNetwork)


def test_pong_preset_smoke_run_through_train_script(tmp_path: Path) -> None:
    result = run_train(
        "--preset", "pong", "--total-timesteps", "400", "--learning-starts", "200", "--buffer-size", "1000",
        "--batch-size", "8", "--train-freq", "32", "--gradient-steps", "4", "--eval-episodes", "0",
        "--logdir", "logs", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(next((tmp_path / "logs").rglob("summary.json")).read_text())
    assert summary["env_steps"] == 400
    replay = np.load(next((tmp_path / "logs").rglob("replay-*.npz")))
    assert replay["frames"].shape == (400, 84, 84) and "obs" not in replay  # each frame once
