"""The Atari 100k presets build the benchmark's protocol (Kaiser et al. 2020; Agarwal et al. 2021), read
back from the env itself, and refuse in one line what would break it silently."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.wrappers import AtariPreprocessing

from dqn_lightning import ConfigError, make_env
from dqn_lightning.acting.atari import EpisodicLife
from dqn_lightning.acting.envs import env_spaces
from dqn_lightning.callbacks.resets import resettable_layers
from dqn_lightning.learner.networks import DataEfficientCNN
from dqn_lightning.run import train
from dqn_lightning.run.build import build_module
from dqn_lightning.run.config import parse_config


def wrapper(env: gym.Env, kind: type) -> gym.Wrapper | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, kind):
            return env
        env = env.env
    return None


@pytest.mark.parametrize("preset", ["atari100k-drq", "atari100k-der"])
@pytest.mark.parametrize("training", [True, False])
def test_the_presets_env_is_the_protocol(preset: str, training: bool) -> None:
    config = parse_config(["--preset", preset, "--env", "ALE/Pong-v5"])
    env = make_env(config.env, training=training, **(config.env_kwargs or {}))
    ale = env.unwrapped.ale  # type: ignore[attr-defined]
    assert ale.getFloat("repeat_action_probability") == 0.0  # no sticky actions
    assert ale.getInt("max_num_frames_per_episode") == 108_000  # 27,000 agent steps of 4 frames
    assert ale.getInt("frame_skip") == 1  # the ALE skips none: the preprocessing does, with a max over 2
    pre = wrapper(env, AtariPreprocessing)
    assert pre is not None and pre.frame_skip == 4 and pre.noop_max == 30 and pre.screen_size == (84, 84)
    assert pre.grayscale_obs
    assert env.action_space.n == len(ale.getMinimalActionSet()) == 6  # Pong's minimal set, not the full 18
    assert env.observation_space.shape == (4, 84, 84)  # 4 stacked 84x84 gray frames
    # a lost life ends an episode for learning only
    assert (wrapper(env, EpisodicLife) is not None) == training
    env.close()


def test_the_drq_preset_is_the_recipe() -> None:
    config = parse_config(["--preset", "atari100k-drq", "--env", "ALE/Breakout-v5"])
    model = build_module(config, env_spaces(config.env, **(config.env_kwargs or {})))
    assert model.double_q and model.hparams["dueling"] and model.target_update_interval == 1
    assert model.augmentation is not None and (model.augmentation.shift, model.augmentation.intensity) == (4, 0.05)
    assert model.hparams["optimizer_options"] == {"eps": 0.00015} and model.hparams["lr"] == 1e-4
    assert (config.n_step, config.learning_starts, config.exploration_steps, config.eps_end) == (10, 1600, 5000, 0.01)
    assert model.hparams["env_kwargs"]["repeat_action_probability"] == 0.0  # evaluation plays the protocol too


def test_the_step_beyond_resets_drq_eps_fully_connected_head_at_twice_the_updates() -> None:
    config = parse_config(["--preset", "atari100k-drq-reset", "--env", "ALE/Breakout-v5"])
    drq = parse_config(["--preset", "atari100k-drq", "--env", "ALE/Breakout-v5"])
    changed = {k for k, v in vars(config).items() if vars(drq)[k] != v}
    assert changed == {"preset", "gradient_steps", "reset_interval", "reset_layers"}  # DrQ(eps) otherwise
    assert (config.train_freq, config.gradient_steps, config.reset_interval) == (1, 2, 40_000)  # every 20k env steps
    model = build_module(config, env_spaces(config.env, **(config.env_kwargs or {})))
    names = [name for name, _ in resettable_layers(model.q_network)][-config.reset_layers :]
    assert names == ["head.layers.0", "head.value", "head.advantage"]  # the fully connected head, not the convs


def test_the_der_preset_is_the_papers_recipe_with_its_small_network() -> None:
    config = parse_config(["--preset", "atari100k-der", "--env", "ALE/Breakout-v5"])
    model = build_module(config, env_spaces(config.env, **(config.env_kwargs or {})))
    q = model.q_network
    assert isinstance(q, DataEfficientCNN) and q.head.layers[0].in_features == 576  # 64 x 3 x 3 from 84x84
    assert q.head.layers[0].out_features == 256
    assert model.target_update_interval == 2000 and config.n_step == 20 and model.augmentation is None
    assert model.hparams["value_head"]["kind"] == "c51" and model.hparams["noisy"] and model.hparams["dueling"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env-kwargs", "{max_num_frames_per_episode: 108000}"], "without sticky actions"),
        (["--env-kwargs", "{repeat_action_probability: 0.25}"], "without sticky actions"),
        (["--env-kwargs", "{repeat_action_probability: 0.0, full_action_space: true}"], "minimal action set"),
        (["--env-kwargs", "{repeat_action_probability: 0.0, max_num_frames_per_episode: 50000}"], "108,000 frames"),
        (["--env", "MinAtar/Breakout-v0"], "ALE/<Game>-v5 ids"),
    ],
)
def test_what_breaks_the_protocol_is_refused_in_one_line(flags: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(["--preset", "atari100k-drq", *flags])


def test_a_short_drq_run_trains_and_evaluates_in_the_protocol(tmp_path: Path) -> None:
    flags = ["--preset", "atari100k-drq", "--env", "ALE/Pong-v5", "--total-timesteps", "300", "--learning-starts",
             "200", "--eval-interval", "300", "--eval-episodes", "1", "--buffer-size", "1000", "--quiet"]  # fmt: skip
    summary = train(parse_config([*flags, "--logdir", str(tmp_path)]))
    assert summary["env_steps"] == 300 and summary["gradient_steps"] == 100


def test_env_kwargs_with_an_env_factory_are_refused_not_dropped() -> None:
    from dqn_lightning import make_vector_env

    with pytest.raises(ConfigError, match="pass them to your own env factory"):
        make_vector_env(lambda: gym.make("CartPole-v1"), 1, env_kwargs={"max_episode_steps": 5})
