"""Episode bookkeeping for a vector env's training run: what is in progress and what finished."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from dqn_lightning.errors import ConfigError


class Episodes:
    """The episode in progress in each of `num_envs` envs, and the episodes finished so far.

    An episode in progress is kept as its actions, so a resumed run can replay it from its
    reset seed (see `seed`) and continue exactly; where the env's reset continues a game (an
    Atari life lost, `GAME_CONTINUES` in the reset info), so are the earlier episodes of that
    game (see `replay_segments`). Finished ones are kept as a count and the last `window`
    returns and lengths (the rollout statistics and the progress bar's score).
    """

    def __init__(self, num_envs: int, window: int = 100) -> None:
        self.num_envs = num_envs
        self.finished = 0
        self.recent_returns: deque[float] = deque(maxlen=window)
        self.recent_lengths: deque[int] = deque(maxlen=window)
        self.start_afresh()

    def start_afresh(self) -> None:
        """Forgets the episodes in progress, as for a DDP rank the checkpoint did not have."""
        self.index = np.zeros(self.num_envs, dtype=np.int64)  # episodes started per env, minus 1
        self.actions: list[list[int]] = [[] for _ in range(self.num_envs)]
        self.game: list[list[list[int]]] = [[] for _ in range(self.num_envs)]  # earlier episodes' actions
        self.returns = np.zeros(self.num_envs)  # (num_envs,) float64, undiscounted so far
        self.lengths = np.zeros(self.num_envs, dtype=np.int64)

    def step(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Adds one env step of every env: `(num_envs,)` actions and rewards."""
        self.returns += rewards
        self.lengths += 1
        for i, action in enumerate(actions.tolist()):
            self.actions[i].append(action)

    def end(self, i: int) -> tuple[float, int]:
        """Closes env `i`'s episode and returns its (return, length); the next one starts empty."""
        finished = float(self.returns[i]), int(self.lengths[i])
        self.finished += 1
        self.recent_returns.append(finished[0])
        self.recent_lengths.append(finished[1])
        self.game[i].append(self.actions[i])  # dropped by `started` unless the next reset continues the game
        self.returns[i], self.lengths[i], self.actions[i] = 0.0, 0, []
        self.index[i] += 1
        return finished

    def started(self, i: int, game_continues: bool) -> None:
        """Env `i` was reset for its next episode: a new game forgets the earlier episodes' actions."""
        if not game_continues:
            self.game[i] = []

    def seed(self, base: int, i: int, index: int | None = None) -> int:
        """The reset seed of env `i`'s current episode (or its episode `index`): distinct per env and
        episode, reproducible."""
        episode = int(self.index[i]) if index is None else index
        return int(np.random.SeedSequence([base, i, episode]).generate_state(1)[0])

    def replay_segments(self, base: int) -> list[list[tuple[int, list[int]]]]:
        """Per env, the (reset seed, actions) of each episode of the game in progress, oldest first:
        what `ReplayableEpisode.replay_episode` plays to rebuild the env."""
        segments = []
        for i in range(self.num_envs):
            episodes = [*self.game[i], self.actions[i]]
            first = int(self.index[i]) - len(self.game[i])
            segments.append([(self.seed(base, i, first + k), list(a)) for k, a in enumerate(episodes)])
        return segments

    def mean_return(self, last: int = 100) -> float:
        """Mean return of the last `last` finished episodes (NaN before the first)."""
        recent = list(self.recent_returns)[-last:]
        return float(np.mean(recent)) if recent else float("nan")

    def state_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (weights-only loadable), under the keys EnvLoop's checkpoints use."""
        return {
            "episodes": self.finished,
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
            "episode_index": self.index.tolist(),
            "episode_actions": [list(a) for a in self.actions],
            "game_actions": [[list(a) for a in game] for game in self.game],
            "episode_return": self.returns.tolist(),
            "episode_length": self.lengths.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores `state_dict`'s output (the oldest checkpoints have no episodes in progress: kept as they are)."""
        saved_envs = len(state.get("episode_index", []))
        if saved_envs not in (0, self.num_envs):
            raise ConfigError(f"the checkpoint ran {saved_envs} envs, this run has num_envs={self.num_envs}")
        self.finished = state["episodes"]
        self.recent_returns.clear()
        self.recent_returns.extend(state.get("recent_returns", []))
        self.recent_lengths.clear()
        self.recent_lengths.extend(state.get("recent_lengths", []))
        if "episode_index" in state:
            self.index = np.asarray(state["episode_index"], dtype=np.int64)
            self.actions = [list(a) for a in state["episode_actions"]]
            # checkpoints before game_actions existed: each episode replays as a game of its own
            self.game = [[list(a) for a in game] for game in state.get("game_actions", [[]] * self.num_envs)]
            self.returns = np.asarray(state["episode_return"], dtype=np.float64)
            self.lengths = np.asarray(state["episode_length"], dtype=np.int64)
