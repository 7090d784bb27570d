"""Prioritized experience replay: transitions drawn in proportion to their last TD error."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, DTypeLike

from dqn_lightning.bounds import check_bounds
from dqn_lightning.errors import ConfigError
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.replay.buffer import ReplayBuffer
from dqn_lightning.replay.sequences import SequenceBatch, Sequences
from dqn_lightning.replay.sum_tree import SumTree


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al., 2016) on a `SumTree`.

    Transition i is drawn with probability `P(i) = p_i^alpha / sum_j p_j^alpha`, where
    `p_i = |TD error| + eps` from the last time it was trained on (new transitions get the
    largest priority seen so far, so each is likely to be replayed once). Batches carry the
    importance weights `w_i = (N * P(i))^-beta / max_batch w` that undo the bias in the loss,
    and the slots drawn, which `DQN` passes back to `update_priorities`. Beta grows linearly
    from `beta_start` to 1 over `beta_steps` added transitions (env steps).

    Sampling is stratified (one draw per equal slice of the total priority) and with
    replacement. The stacked minibatches of one `ReplayDataset` item are all drawn before any
    of them is trained on, so their priorities are updated together after the last.

    The other arguments are `ReplayBuffer`'s.

    Args:
        alpha: how much prioritization is used (0: uniform).
        beta_start: importance-sampling exponent at the start (1: full correction).
        beta_steps: transitions added until beta reaches 1 (the run's total_timesteps).
        eps: added to |TD error| so no transition gets priority 0.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: DTypeLike = np.float32,
        seed: int | None = None,
        *,
        alpha: float = 0.6,
        beta_start: float = 0.4,
        beta_steps: int = 100_000,
        eps: float = 1e-6,
        n_step: int = 1,
        gamma: float = 0.99,
        num_envs: int = 1,
        store_frames: bool = False,
        action_masks: int | None = None,
        sequences: Sequences | None = None,
    ) -> None:
        check_bounds(per_alpha=alpha, per_beta_start=beta_start, per_eps=eps)
        if beta_steps < 0:
            raise ConfigError(f"beta_steps must be >= 0, got {beta_steps}")
        layout: dict[str, Any] = {"n_step": n_step, "gamma": gamma, "num_envs": num_envs,
                                  "store_frames": store_frames, "action_masks": action_masks,
                                  "sequences": sequences}  # fmt: skip
        super().__init__(capacity, obs_shape, obs_dtype, seed, **layout)
        self.alpha, self.beta_start, self.beta_steps, self.eps = alpha, beta_start, beta_steps, eps
        self.tree = SumTree(capacity)
        self.max_priority = 1.0
        self.added = 0  # transitions ever added: the clock of the beta schedule

    @property
    def beta(self) -> float:
        """Importance-sampling exponent now."""
        if self.beta_steps == 0:
            return 1.0
        return self.beta_start + (1.0 - self.beta_start) * min(1.0, self.added / self.beta_steps)

    def add(
        self,
        obs: ArrayLike,
        action: ArrayLike,
        reward: ArrayLike,
        next_obs: ArrayLike,
        terminated: ArrayLike,
        truncated: ArrayLike | None = None,
        next_mask: ArrayLike | None = None,
        state: ArrayLike | None = None,
    ) -> None:
        n = np.asarray(action).shape[0]
        slots = (self.pos + np.arange(n)) % self.capacity
        super().add(obs, action, reward, next_obs, terminated, truncated, next_mask, state)
        if self.sequences is None:
            self.tree.set(slots, np.full(n, self.max_priority**self.alpha))
        else:  # a sequence is drawn from its first step, once complete (see Sequences)
            self.tree.set(slots, 0.0)
            completed = self.sequences.completed_now
            if len(completed):
                self.tree.set(completed, np.full(len(completed), self.max_priority**self.alpha))
            if self.size == self.capacity:  # the oldest steps lost their previous steps (see Sequences)
                oldest = (self.pos + np.arange(n)) % self.capacity
                stale = oldest[self.sequences.episode_step[oldest] > 0]
                if len(stale):
                    self.tree.set(stale, 0.0)
        self.added += n
        count, first = self._sampleable()
        if count < self.size:  # the oldest frames' stacks are broken: never draw them
            self.tree.set((first - self.store.excluded + np.arange(self.store.excluded)) % self.capacity, 0.0)

    def sample(self, batch_size: int, num_batches: int | None = None, pin: bool = False) -> ReplayBatch | SequenceBatch:
        """Draws `batch_size` transitions (sequences) by priority (`num_batches` stacked, as in `ReplayBuffer`)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer: fill it first (EnvLoop's learning_starts)")
        shape = (batch_size,) if num_batches is None else (num_batches, batch_size)
        total = self.tree.total
        strata = (np.arange(batch_size) + self.rng.random(shape)) / batch_size
        idx = self.tree.find(strata * total)
        probs = self.tree.get(idx) / total
        count = self._sampleable()[0] if self.sequences is None else len(self.sequences.start_slots(self))
        weight = (count * probs) ** -self.beta
        weight /= weight.max(axis=-1, keepdims=True)
        return self.gather(idx, pin=pin)._replace(
            weight=torch.from_numpy(weight.astype(np.float32)), slot=torch.from_numpy(idx)
        )

    def update_priorities(self, index: ArrayLike, td_error: ArrayLike) -> None:
        """Sets the priorities of slots `index` from their TD errors (any matching shapes)."""
        priority = np.abs(np.asarray(td_error, dtype=np.float64)).ravel() + self.eps
        if not np.all(np.isfinite(priority)):
            raise ValueError("TD errors must be finite to become priorities")
        self.max_priority = max(self.max_priority, float(priority.max()))
        self.tree.set(np.asarray(index).ravel(), priority**self.alpha)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "max_priority": self.max_priority, "added": self.added}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.max_priority = float(state["max_priority"])
        self.added = int(state["added"])

    def _arrays(self) -> dict[str, np.ndarray]:
        # the tree's leaves (p^alpha per slot) are saved with the transitions; sums are rebuilt
        return {**super()._arrays(), "priority": self.tree.nodes[self.tree.leaves : self.tree.leaves + self.capacity]}

    def load(self, path: Any) -> None:
        super().load(path)
        self.tree.rebuild()
