"""The one interface between the env loop and the learner it feeds, both ways, and fault agreement.

- `Learner`: what `EnvLoop` needs from the LightningModule: the action count and a policy.
- `StepOutput`: what a training step hands back, which Lightning passes to `on_train_batch_end`
  as `outputs`: the batch's new PER priorities (the replay side writes them into its buffer,
  as TorchRL's loss writes `td_error` into the sample) and a non-finite-loss fault.
- `check_parts_fit`: the env, the buffer and the module agree on shapes and counts.
- `agree_at_batch_end`: under DDP, a fault on one rank stops every rank, at once and with the
  faulty rank's message. A rank whose env raises, or whose loss turns NaN, does not raise on its
  own: the other ranks would wait for it in their next collective until the process group's
  timeout (30 minutes by default). It records the fault, takes part in the rest of the batch,
  and at the end of the batch every rank calls `agree_at_batch_end`: one all-reduce per batch on
  the healthy path, which carries the fault flag, the stop requests (`StopRequest`: Ctrl-C on
  any rank) and the episode counts together, and, only when a fault flag is up, one gather of
  the messages. Then every rank raises the same `TrainingFault`, before any checkpoint of the
  batch could save spoiled weights.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, TypedDict, runtime_checkable

import numpy as np
import pytorch_lightning as pl
import torch

from dqn_lightning.acting.memory import RecurrentLearner
from dqn_lightning.errors import ConfigError, TrainingFault
from dqn_lightning.replay.buffer import ReplayBuffer


@runtime_checkable
class Learner(Protocol):
    """What `EnvLoop` needs from the module it feeds."""

    n_actions: int

    def act(
        self,
        obs: np.ndarray,
        epsilon: float = 0.0,
        rng: np.random.Generator | None = None,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Epsilon-greedy actions `(n,)` int64 for observations `(n, *obs_shape)`; with `mask` `(n,
        n_actions)` bool (action masks), only legal ones. The loop passes `mask` only when masks are on."""
        ...

    def close_envs(self) -> None:
        """Closes the module's own envs (evaluation); called when fit fails."""
        ...


class StepOutput(TypedDict, total=False):
    """What `training_step` returns: nothing on the plain path."""

    slot: torch.Tensor  # (n,) int64: the buffer slots the batch's samples came from (prioritized replay)
    priority: torch.Tensor  # (n,) float32: their new priority signal (|TD error| or the distributional loss)
    fault: NonFiniteLoss  # the batch's first non-finite loss, raised on every rank at the batch's end


class NonFiniteLoss(TrainingFault):
    """A NaN or infinite loss at `gradient_step`; `EnvLoop` reports it with the env step and resume hint."""

    def __init__(self, value: float, gradient_step: int) -> None:
        super().__init__(f"the loss became {value} at gradient step {gradient_step}")
        self.value, self.gradient_step = value, gradient_step

    def report(self, env_steps: int, resume_hint: str) -> TrainingFault:
        """The user's message: where it happened, where to continue from, and what to look for."""
        fault = TrainingFault(
            f"{self} (env step {env_steps}); {resume_hint} (it predates the bad update). Look for NaN or huge "
            "rewards or observations from the env, or lower --lr / set --max-grad-norm"
        )
        fault.gradient_step = self.gradient_step
        return fault


@runtime_checkable
class StopRequest(Protocol):
    """A callback that may ask to stop at the end of a batch (`GracefulInterrupt`). The env loop
    folds `requested` into its one per-batch all-reduce and writes what the ranks agreed into
    `agreed`, so the callback needs no collective of its own."""

    requested: bool
    agreed: bool | None


class BatchAgreement(NamedTuple):
    """What every rank agreed at the end of a batch."""

    stop_requested: bool  # some rank asked to stop (a StopRequest)
    episodes: int  # episodes finished over all ranks


def agree_at_batch_end(
    trainer: pl.Trainer, fault: TrainingFault | None, stop_requested: bool = False, episodes: int = 0
) -> BatchAgreement:
    """Raises a `TrainingFault` on every rank if any rank has one (on one process: raises `fault`);
    else returns the ranks' stop requests and episode counts, all in one all-reduce."""
    if trainer.world_size == 1:
        if fault is not None:
            raise fault
        return BatchAgreement(stop_requested, episodes)
    votes = torch.tensor([float(fault is not None), float(stop_requested), float(episodes)], dtype=torch.float64)
    faults, stops, total = trainer.strategy.reduce(votes.to(trainer.strategy.root_device), reduce_op="sum").tolist()
    if faults == 0.0:
        return BatchAgreement(stops > 0.0, int(total))
    # a NaN loss spreads to every rank through the averaged gradients: report the first one
    # (lowest gradient step, then lowest rank); an env fault counts as earlier than any NaN
    reports: list[tuple[float, int, str] | None] = [None] * trainer.world_size
    mine = (_when(fault), trainer.global_rank, str(fault)) if fault is not None else None
    torch.distributed.all_gather_object(reports, mine)
    _, rank, message = min(report for report in reports if report is not None)
    raise TrainingFault(f"rank {rank}: {message}") from fault


def _when(fault: TrainingFault) -> float:
    return float(fault.gradient_step) if fault.gradient_step is not None else -1.0


def check_parts_fit(env: Any, buffer: ReplayBuffer, num_envs: int, module: object) -> Learner:
    """The module, as a `Learner`, once the env, the buffer and the module are shown to fit
    together (observation shape, envs per step, action count); else a one-line `ConfigError`."""
    obs_shape = env.single_observation_space.shape
    if buffer.obs_shape != tuple(obs_shape):
        raise ConfigError(
            f"the replay buffer stores observations of shape {buffer.obs_shape} but the env "
            f"returns {obs_shape}: build the buffer from the env's observation space"
        )
    if buffer.env_ordered and buffer.num_envs != num_envs:
        raise ConfigError(
            f"the replay buffer expects {buffer.num_envs} envs per step (n-step returns or frame storage) "
            f"but the loop runs {num_envs}: build the buffer with num_envs={num_envs}"
        )
    if not isinstance(module, Learner):
        raise ConfigError(
            f"EnvLoop feeds a module with n_actions, act(obs, epsilon, rng) and close_envs() (see "
            f"dqn_lightning.acting.interface.Learner); {type(module).__name__} lacks them"
        )
    recurrent = isinstance(module, RecurrentLearner)
    sequences = buffer.sequences
    if recurrent != (sequences is not None):
        raise ConfigError(
            "a recurrent learner learns from sequences: build its buffer with sequences=Sequences(length, overlap, "
            "state_size=module.state_size)" if recurrent else
            "this buffer samples sequences, which only a recurrent learner (RecurrentDQN) reads: drop its sequences="
        )  # fmt: skip
    if isinstance(module, RecurrentLearner) and sequences is not None and sequences.state.shape[1] != module.state_size:
        raise ConfigError(
            f"the buffer keeps recurrent states of {sequences.state.shape[1]} floats but the module's are "
            f"{module.state_size}: build the buffer's Sequences with state_size=module.state_size"
        )
    if module.n_actions != env.single_action_space.n:
        raise ConfigError(
            f"the module has {module.n_actions} actions but the env has {env.single_action_space.n}: "
            "build the module for this env (DQN.from_env)"
        )
    return module
