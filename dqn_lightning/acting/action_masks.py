"""Action masks: the legal actions of each env's current state, as Gymnasium's own envs report them.

An env says which actions are legal in `info["action_mask"]` (`(n_actions,)` int8, 1 = legal:
Taxi-v4 does so at every reset and step); a vector env gathers them into `(num_envs, n_actions)`
with a `_action_mask` flag per env that has one. With masks on, illegal actions are never taken
(exploration draws among the legal ones, the greedy action is the best legal one) and the
bootstrap max runs over the next state's legal actions (the buffer keeps them). With masks off,
an env that still reports them lets the loop count the illegal actions the agent takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dqn_lightning.errors import ConfigError


def infos_mask(infos: dict[str, Any], current: np.ndarray | None) -> np.ndarray | None:
    """The vector env's masks after a reset or step: `current` with the rows of the envs that
    reported one replaced, as bool `(num_envs, n_actions)`; None if no env reports masks."""
    if "action_mask" not in infos:
        return current
    reported = np.asarray(infos["action_mask"], dtype=bool)
    has = np.asarray(infos.get("_action_mask", np.ones(len(reported), dtype=bool)), dtype=bool)
    if current is None:
        return reported.copy()
    updated = current.copy()
    updated[has] = reported[has]
    return updated


def random_legal(u: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """Uniform random legal actions `(n,)` from uniform draws `u` `(n,)` in [0, 1): the k-th legal
    action with k = floor(u * count); a row with no legal action draws from all actions."""
    legal = np.asarray(legal, dtype=bool)
    legal = legal | ~legal.any(axis=1, keepdims=True)
    count = legal.sum(axis=1)
    k = np.minimum((u * count).astype(np.int64), count - 1)
    return np.argmax(np.cumsum(legal, axis=1) > k[:, None], axis=1)


class ActionMasks:
    """The env loop's view of the masks: the current ones, and the illegal actions taken so far.

    Args:
        enabled: mask the agent's actions and store next-state masks for the bootstrap.
        env_id: named in the error when masks are on and the env reports none.
    """

    def __init__(self, enabled: bool, env_id: str = "the env") -> None:
        self.enabled, self.env_id = enabled, env_id
        self.current: np.ndarray | None = None  # (num_envs, n_actions) bool, None before any report
        self.illegal_actions = 0  # actions taken outside the env's mask (counted whenever it reports one)

    def update(self, infos: dict[str, Any]) -> None:
        """Reads the masks of a reset's or step's infos."""
        self.current = infos_mask(infos, self.current)
        if self.enabled and self.current is None:
            raise ConfigError(
                f"--action-masks is on but {self.env_id} gives no info['action_mask'] at reset: "
                "turn it off, or have the env report its legal actions"
            )

    def count(self, actions: np.ndarray) -> None:
        """Counts the illegal ones among `actions` `(num_envs,)` taken in the current states."""
        if self.current is not None:
            self.illegal_actions += int((~self.current[np.arange(len(actions)), actions]).sum())

    def for_acting(self) -> np.ndarray | None:
        """The masks the policy must respect now (None with masks off)."""
        return self.current if self.enabled else None

    def state_dict(self) -> dict[str, Any]:
        return {"illegal_actions": self.illegal_actions}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.illegal_actions = int(state.get("illegal_actions", 0))
