"""Atari resume: a training env whose episodes end at a lost life is rebuilt mid-game, exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dqn_lightning import make_vector_env
from dqn_lightning.acting.atari import GAME_CONTINUES
from dqn_lightning.acting.episodes import Episodes

ROOT = Path(__file__).resolve().parents[2]
BASE = 7  # the episode seeds' base, as EnvLoop's seed + rank


def play(env: Any, tracker: Episodes, rng: np.random.Generator, steps: int) -> list[tuple[Any, ...]]:
    """Random actions with EnvLoop's bookkeeping (end, reset with the next episode's seed, started);
    returns what each step and reset showed."""
    seen: list[tuple[Any, ...]] = []
    for _ in range(steps):
        actions = rng.integers(4, size=1)
        obs, reward, terminated, truncated, _ = env.step(actions)
        tracker.step(actions, reward)
        seen.append((obs.copy(), float(reward[0]), bool(terminated[0])))
        if terminated[0] or truncated[0]:
            tracker.end(0)
            obs, infos = env.reset(seed=[tracker.seed(BASE, 0)], options={"reset_mask": np.array([True])})
            tracker.started(0, bool(infos.get(GAME_CONTINUES, [False])[0]))
            seen.append((obs.copy(), 0.0, False))
    return seen


def lives(env: Any) -> int:
    return int(env.envs[0].unwrapped.ale.lives())


def test_a_game_in_progress_after_lost_lives_is_rebuilt_and_goes_on_the_same() -> None:
    original = make_vector_env("ALE/Breakout-v5", 1, training=True)
    rebuilt = make_vector_env("ALE/Breakout-v5", 1, training=True)
    try:
        tracker, rng = Episodes(1), np.random.default_rng(0)
        original.reset(seed=[tracker.seed(BASE, 0)])
        seen = play(original, tracker, rng, 100)
        while not (tracker.game[0] and tracker.actions[0]):  # stop inside the 2nd or a later life
            seen += play(original, tracker, rng, 1)
        assert lives(original) < 5 and len(tracker.game[0]) == 5 - lives(original)  # an episode per lost life

        rebuilt.reset(seed=[123])  # a fresh env as on resume (its first reset starts a game), then the replay
        replay_tracker = Episodes(1)
        replay_tracker.load_state_dict(tracker.state_dict())
        obs = np.stack(rebuilt.call("replay_episode", tracker.replay_segments(BASE)))
        assert np.array_equal(obs, seen[-1][0]) and lives(rebuilt) == lives(original)

        # the same actions from here on: the same frames, rewards and ends, through lives and into a new game
        went_on = play(original, tracker, np.random.default_rng(1), 400)
        replayed = play(rebuilt, replay_tracker, np.random.default_rng(1), 400)
        assert sum(end for _, _, end in went_on) >= 3
        for (obs_a, *rest_a), (obs_b, *rest_b) in zip(went_on, replayed, strict=True):
            assert np.array_equal(obs_a, obs_b) and rest_a == rest_b
    finally:
        original.close()
        rebuilt.close()


def test_a_breakout_run_resumed_from_a_checkpoint_taken_mid_game_ends_with_the_same_weights(tmp_path: Path) -> None:
    flags = [sys.executable, str(ROOT / "scripts" / "train.py"), "--preset", "breakout-1m", "--total-timesteps",
             "1400", "--learning-starts", "600", "--buffer-size", "2000", "--checkpoint-interval", "100",
             "--eval-episodes", "0", "--exploration-fraction", "0.5", "--quiet"]  # fmt: skip
    a = subprocess.run([*flags, "--logdir", "a"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert a.returncode == 0, a.stderr[-2000:]
    folder = tmp_path / "a" / "ALE_Breakout-v5" / "version_0" / "checkpoints"
    final_a = torch.load(folder / "last.ckpt", weights_only=False)
    # a checkpoint after updates began and inside a game's 2nd or later life: the case to rebuild
    mid_game = [
        path
        for step in range(800, 1400, 100)
        if (path := folder / f"periodic-envstep{step}.ckpt").exists()
        and torch.load(path, weights_only=False)["callbacks"]["EnvLoop"]["game_actions"][0]
    ]
    assert mid_game, "no checkpoint fell after a lost life: change the steps"

    resumed = subprocess.run([*flags, "--logdir", "a", "--resume", str(mid_game[0])], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final_b = torch.load(folder / "last.ckpt", weights_only=False)
    assert final_b["callbacks"]["EnvLoop"]["env_steps"] == 1400
    assert all(torch.equal(final_a["state_dict"][k], final_b["state_dict"][k]) for k in final_a["state_dict"])
    for key in ("episodes", "recent_returns", "recent_lengths", "episode_actions", "game_actions"):
        assert final_a["callbacks"]["EnvLoop"][key] == final_b["callbacks"]["EnvLoop"][key], key
