"""What a checkpoint keeps of the env loop, and how a resumed loop continues exactly.

The loop's buffer travels in a replay file beside each checkpoint (see `ReplayFiles`), its
counters, RNG, episodes in progress and the buffer's small state in the checkpoint itself.
Under DDP every rank saves its own: rank 0's checkpoint gathers all ranks' states, and each
rank resumes its own envs and buffer.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from typing_extensions import override

from dqn_lightning.acting.action_masks import ActionMasks
from dqn_lightning.acting.clocks import TrainClock
from dqn_lightning.acting.episodes import Episodes
from dqn_lightning.acting.memory import ActingMemory
from dqn_lightning.acting.rollout_log import RolloutLog
from dqn_lightning.errors import ConfigError
from dqn_lightning.replay.buffer import ReplayBuffer
from dqn_lightning.replay.dataset import ReplayDataModule
from dqn_lightning.replay.replay_files import ReplayFiles


class LoopState(Callback):
    """The saving and restoring half of `EnvLoop` (which sets every attribute declared here)."""

    env_steps: int
    clock: TrainClock
    seed: int
    rng: np.random.Generator
    tracker: Episodes
    rollout_log: RolloutLog
    rank: int
    world_size: int
    learning_starts: int
    log_interval: int
    _buffer: ReplayBuffer | None
    _replay_files: ReplayFiles | None
    _save_buffer: Any
    _buffer_limit_bytes: int
    _restored: bool
    _buffer_file: str | None  # replay file of the checkpoint we resumed from
    _rank_states: list[dict[str, Any]] | None  # DDP: every rank's state from a checkpoint
    masks: ActionMasks
    memory: ActingMemory | None
    _memory_state: dict[str, Any] | None

    def _attach_buffer(self, trainer: pl.Trainer) -> None:
        """Without a buffer of its own, the loop fills the Trainer's `ReplayDataModule`'s."""
        if self._buffer is not None:
            return
        datamodule = getattr(trainer, "datamodule", None)
        if not isinstance(datamodule, ReplayDataModule):
            raise ConfigError(
                "EnvLoop without a buffer fills the ReplayDataModule's: fit with "
                "trainer.fit(model, datamodule=ReplayDataModule(buffer, ...)), or give EnvLoop the buffer"
            )
        self._buffer = datamodule.buffer

    @property
    def buffer(self) -> ReplayBuffer:
        """The replay buffer this loop fills."""
        if self._buffer is None:
            raise RuntimeError("EnvLoop has no buffer yet: give it one, or fit with a ReplayDataModule")
        return self._buffer

    @property
    def replay_files(self) -> ReplayFiles:
        """Saves the buffer beside each checkpoint and reads it back on resume."""
        if self._replay_files is None:
            self._replay_files = ReplayFiles(self.buffer, self._save_buffer, self._buffer_limit_bytes)
        return self._replay_files

    @override
    def state_dict(self) -> dict[str, Any]:
        state = self._own_state()
        if self.world_size > 1:
            # every rank calls this while a checkpoint is made, and only rank 0 writes the file:
            # gather all ranks' env states into it, so each rank resumes its own envs and buffer
            states: list[Any] = [None] * self.world_size
            torch.distributed.all_gather_object(states, state)
            state = {**state, "ranks": states}
        return state

    def _own_state(self) -> dict[str, Any]:
        return {
            "env_steps": self.env_steps,
            "train_seconds": self.clock.elapsed(),
            **self.tracker.state_dict(),
            "rng": self.rng.bit_generator.state,
            "seed": self.seed,
            "next_log": self.rollout_log.next_at,
            "buffer": self.buffer.state_dict(),
            "buffer_file": self.replay_files.file_name(self.env_steps, self.rank),
            **self.masks.state_dict(),
        } | ({"memory": self.memory.state_dict()} if self.memory is not None else {})

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # the rank is not known yet (setup comes later): keep every rank's state for on_train_start
        self._rank_states = state_dict.get("ranks")
        self._load_rank_state(state_dict)

    def _load_rank_state(self, state_dict: dict[str, Any] | None) -> None:
        if state_dict is None:  # more ranks than the checkpoint had: this rank starts afresh
            self._restored, self._buffer_file = True, None
            self.tracker.start_afresh()
            return
        self.tracker.load_state_dict(state_dict)  # first: it refuses a checkpoint of another num_envs
        self.env_steps = state_dict["env_steps"]
        self.masks.load_state_dict(state_dict)
        self.clock.seconds = state_dict.get("train_seconds", 0.0)
        self.rng.bit_generator.state = state_dict["rng"]
        self.seed = state_dict.get("seed", self.seed)
        self.rollout_log.next_at = state_dict.get("next_log", self.log_interval)
        if "buffer" in state_dict:
            self.buffer.load_state_dict(state_dict["buffer"])
        self._buffer_file = state_dict.get("buffer_file")
        self._memory_state = state_dict.get("memory")
        if self._memory_state is not None and self.memory is not None:
            self.memory.load_state_dict(self._memory_state)
        self._restored = True

    @override
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.replay_files.save(trainer, self.env_steps, self.rank)  # under DDP every rank its own file

    # ---- resume helpers -----------------------------------------------------------------------

    def _load_buffer(self, trainer: pl.Trainer) -> None:
        """Reads the replay file saved with the resumed checkpoint, or starts the buffer afresh."""
        if not self.replay_files.load(trainer, self._buffer_file):
            warnings.warn(
                f"resuming without the replay buffer ({self._buffer_file or 'not saved'}): it is refilled with "
                f"{self.learning_starts} random steps, so this run will not match an uninterrupted one exactly",
                stacklevel=2,
            )
            self.learning_starts = self.env_steps + self.learning_starts
