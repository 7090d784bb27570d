"""Watch a trained agent play a few games, with its scores (and MP4s with --video).

    python scripts/play.py --checkpoint lightning_logs/CartPole-v1/version_0/checkpoints/last.ckpt
    python scripts/play.py --checkpoint last --episodes 5 --video videos/    # MP4s, no display needed
    python scripts/play.py --checkpoint PATH --render human                  # a window, if there is a display
    python scripts/play.py --checkpoint PATH --episodes 20 --num-envs 10     # scores only, 10 games at a time

Loads the policy with `DQN.load_from_checkpoint` alone (weights-only: no code in the file runs),
plays greedy games (`--epsilon` adds exploration), prints `Game N Score: S` per game and the
mean ± std at the end. The env defaults to the one stored in the checkpoint; `--env-kwargs` changes
its arguments (`'{"repeat_action_probability": 0.0}'`: an Atari game without sticky actions).
`--checkpoint last` (or `best`) takes the newest last.ckpt under lightning_logs/; a folder that
`push_to_hub.py --local-dir` built (as `docs/`'s shared agents) plays too (needs the hub extra).
`--num-envs N` plays N games at a time in a vector env, one batched forward per step: the same
seeded games, several times faster for a CNN (no window or video then).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from typing import Any

import numpy as np
from gymnasium.wrappers import RecordVideo

from dqn_lightning import DQN, ConfigError, make_env, make_vector_env
from dqn_lightning.acting.evaluation import SingleEnvPolicy, evaluate
from dqn_lightning.callbacks.checkpointing import chosen_checkpoint
from dqn_lightning.errors import exit_code
from dqn_lightning.learner.checkpoint_file import check_env_matches


def play(
    checkpoint: str,
    episodes: int,
    env_id: str | None,
    seed: int,
    render: str,
    video: str | None,
    epsilon: float,
    env_kwargs: dict[str, Any] | None = None,
    num_envs: int = 1,
) -> np.ndarray:
    """Plays `episodes` games (the env built with `env_kwargs`), `num_envs` at a time, and returns their scores."""
    path = chosen_checkpoint(checkpoint)
    if path.is_dir():  # a model folder from push_to_hub.py (weights and hyperparameters, no training state)
        from dqn_lightning.tools.hub import load_from_hub

        model = load_from_hub(path)
    else:
        model = DQN.load_from_checkpoint(path, map_location="cpu").eval()
    env_id = env_id or model.hparams["env_id"]
    if env_id is None:
        raise ConfigError(f"{path} stores no env id: pass --env")
    check_env_matches(dict(model.hparams), env_id, path)
    if env_id == model.hparams["env_id"]:  # its own env as it trained there, unless --env-kwargs says otherwise
        env_kwargs = {**(model.hparams.get("env_kwargs") or {}), **(env_kwargs or {})}
    if render == "human" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError("--render human needs a display and none is set (DISPLAY is empty); use --video DIR")
    if num_envs > 1:
        return _play_batched(model, env_id, episodes, seed, epsilon, env_kwargs or {}, num_envs)
    render_mode = "rgb_array" if video else ("human" if render == "human" else None)
    env = make_env(env_id, render_mode=render_mode, **(env_kwargs or {}))
    if video:
        env = RecordVideo(env, video, episode_trigger=lambda _: True, name_prefix="game", disable_logger=True)
    rng = np.random.default_rng(seed)
    masked = bool(model.hparams.get("action_masks", False))  # trained with masks: play by them too
    scores = []
    try:
        for game in range(1, episodes + 1):
            obs, info = env.reset(seed=seed + game)
            policy = SingleEnvPolicy(model.policy(1, epsilon, rng))  # a recurrent agent's memory follows the game
            score, ended = 0.0, False
            while not ended:
                mask = np.asarray(info["action_mask"], dtype=bool)[None] if masked else None
                action = policy.step(obs, mask)
                obs, reward, terminated, truncated, info = env.step(action)
                score += float(reward)
                ended = terminated or truncated
                policy.observe(action, float(reward), ended)
            print(f"Game {game} Score: {score}", flush=True)
            scores.append(score)
    finally:
        env.close()
    return _report(np.array(scores))


def _play_batched(
    model: DQN, env_id: str, episodes: int, seed: int, epsilon: float, env_kwargs: dict[str, Any], num_envs: int
) -> np.ndarray:
    """Game i (seeded seed + i) as in `play`, but `num_envs` games step together through one forward."""
    env = make_vector_env(functools.partial(make_env, env_id, **env_kwargs), num_envs)
    rng = np.random.default_rng(seed)
    masked = bool(model.hparams.get("action_masks", False))

    policy = model.policy(num_envs, epsilon, rng)
    scores: list[float] = []
    try:
        for start in range(1, episodes + 1, num_envs):
            seeds = [seed + game for game in range(start, min(start + num_envs, episodes + 1))]
            for game, score in zip(range(start, start + len(seeds)), evaluate(policy, env, seeds, masked), strict=True):
                print(f"Game {game} Score: {score}", flush=True)
                scores.append(float(score))
    finally:
        env.close()
    return _report(np.array(scores))


def _report(scores: np.ndarray) -> np.ndarray:
    print(f"Mean score over {len(scores)} games: {scores.mean():.1f} ± {scores.std():.1f}")
    return scores


def parse_env_kwargs(text: str | None) -> dict[str, Any]:
    """`--env-kwargs` as a dict, or a one-line `ConfigError` when it is not a JSON object."""
    if text is None:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as err:
        example = '{"max_episode_steps": 500}'
        raise ConfigError(f"--env-kwargs is not JSON ({err.msg}): give an object like '{example}'") from None
    if not isinstance(kwargs, dict):
        raise ConfigError(f"--env-kwargs must be a JSON object of argument names and values, got {text!r}")
    return kwargs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint", required=True, help="a .ckpt path, a model folder, or 'last' or 'best' for the newest run's"
    )
    parser.add_argument("--episodes", type=int, default=5, help="games to play")
    parser.add_argument("--env", default=None, help="env id (default: the checkpoint's)")
    parser.add_argument("--seed", type=int, default=0, help="game i resets the env with seed + i")
    parser.add_argument("--render", choices=["human", "none"], default="none", help="show a window (needs a display)")
    parser.add_argument("--video", default=None, help="folder for one MP4 per game (headless)")
    parser.add_argument("--epsilon", type=float, default=0.0, help="exploration rate while playing")
    parser.add_argument("--num-envs", type=int, default=1, help="games played at a time (no window or video if > 1)")
    parser.add_argument(
        "--env-kwargs",
        default=None,
        help="JSON object of env arguments, e.g. '{\"repeat_action_probability\": 0.0}' (Atari, no sticky actions)",
    )
    args = parser.parse_args(argv)

    def run() -> None:
        if args.episodes < 1 or not 0.0 <= args.epsilon <= 1.0:
            raise ConfigError("--episodes must be >= 1 and --epsilon in [0, 1]")
        if args.num_envs < 1:
            raise ConfigError(f"--num-envs must be >= 1 games at a time, got {args.num_envs}")
        if args.num_envs > 1 and (args.video or args.render == "human"):
            raise ConfigError(
                "--num-envs > 1 plays without a window or video: drop --video/--render, or use --num-envs 1"
            )
        env_kwargs = parse_env_kwargs(args.env_kwargs)
        play(args.checkpoint, args.episodes, args.env, args.seed, args.render, args.video, args.epsilon, env_kwargs,
             min(args.num_envs, args.episodes))  # fmt: skip

    return exit_code("play.py", run)


if __name__ == "__main__":
    sys.exit(main())
