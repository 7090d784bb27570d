"""Greedy evaluation: play whole episodes with a fixed policy and report their returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from gymnasium.vector import VectorEnv

from dqn_lightning.acting.action_masks import infos_mask
from dqn_lightning.errors import ConfigError

Policy = Callable[..., np.ndarray]  # (n, *obs_shape) [, mask=(n, n_actions) bool] -> (n,) int actions


def evaluate(policy: Policy, env: VectorEnv, seeds: Sequence[int], masked: bool = False) -> np.ndarray:
    """Plays one episode per seed, `env.num_envs` at a time; returns `(len(seeds),)` float64 returns.

    Each episode starts from `reset(seed=...)`, so a set of seeds is a fixed, repeatable test.
    Sub-envs keep stepping after their episode ends (vector envs step together), but only the
    first episode of each counts. Works with self-resetting vector envs and with those from
    `make_vector_env`, which leave resets to the caller. `masked`: the policy gets each state's
    legal actions as `mask=` (from `info["action_mask"]`, see `action_masks`). A policy with a
    memory (`ActingMemory`) is `reset()` before each round of episodes and `observe`s each step.
    """
    observe, reset = getattr(policy, "observe", None), getattr(policy, "reset", None)
    returns = np.zeros(len(seeds))
    for start in range(0, len(seeds), env.num_envs):
        chunk = list(seeds[start : start + env.num_envs])
        chunk += [chunk[-1]] * (env.num_envs - len(chunk))  # pad a short last round; extra results dropped
        obs, infos = env.reset(seed=chunk)  # type: ignore[arg-type]  # vector envs take a seed per sub-env
        if reset is not None:
            reset()
        mask = infos_mask(infos, None) if masked else None
        if masked and mask is None:
            raise ConfigError("the policy acts with action masks, but the env gives no info['action_mask']")
        total = np.zeros(env.num_envs)
        running = np.ones(env.num_envs, dtype=bool)
        while running.any():
            actions = policy(obs, mask=mask) if mask is not None else policy(obs)
            obs, reward, terminated, truncated, infos = env.step(actions)
            mask = infos_mask(infos, mask) if mask is not None else None
            total += np.where(running, reward, 0.0)
            ended = terminated | truncated
            if observe is not None:
                observe(actions, reward, ended)
            running &= ~ended
            if ended.any() and running.any():
                # envs built by make_vector_env do not reset themselves; restart the finished
                # ones so the others can go on stepping (their new episodes are not counted)
                obs, infos = env.reset(options={"reset_mask": ended})
                mask = infos_mask(infos, mask) if mask is not None else None
        returns[start : start + env.num_envs] = total[: len(seeds) - start]
    return returns


class SingleEnvPolicy:
    """A policy for one env (not a vector env): `step(obs) -> action`, then `observe(action, reward,
    ended)`; a policy with a memory (`ActingMemory`) follows the episode through it."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        getattr(policy, "reset", lambda: None)()

    def step(self, obs: np.ndarray, mask: np.ndarray | None = None) -> int:
        """The action for `obs` (`mask` `(1, n_actions)`: the legal actions, for a masked policy)."""
        batch = np.asarray(obs)[None]
        return int((self.policy(batch, mask=mask) if mask is not None else self.policy(batch))[0])

    def observe(self, action: int, reward: float, ended: bool) -> None:
        observe = getattr(self.policy, "observe", None)
        if observe is not None:
            observe(np.array([action]), np.array([reward], dtype=np.float32), np.array([ended]))


def episode_seeds(base_seed: int, evaluation: int, episodes: int) -> list[int]:
    """Distinct, reproducible env seeds for one evaluation, drawn apart from training seeds."""
    return [int(s) for s in np.random.SeedSequence([base_seed, evaluation]).generate_state(episodes)]
