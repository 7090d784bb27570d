"""Recurrent DQN (R2D2, Kapturowski et al. 2019) as a DQN variant: the update's two hooks over sequences,
with the stored start state and burn-in, and acting that carries each env's state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dqn_lightning.acting.atari import is_atari
from dqn_lightning.acting.memory import ActingMemory
from dqn_lightning.bounds import check_bounds
from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.module import DQN
from dqn_lightning.learner.policy import exploration
from dqn_lightning.learner.recurrent_net import CoreKind, RecurrentNetwork, RecurrentQNetwork
from dqn_lightning.learner.sequence_td import masked_sequence_loss, sequence_targets
from dqn_lightning.learner.td import TDLoss
from dqn_lightning.replay.sequences import SequenceBatch


class RecurrentDQN(DQN):
    """DQN with a recurrent Q-network, learning from replayed sequences (`SequenceBatch`).

    Each sequence starts from the recurrent state acting had at its first step (`stored_state`;
    else from zeros), which both networks run through the first `burn_in` steps without a loss,
    as R2D2 does; the loss covers the rest, `n_step` returns summed inside the sequence (Double
    DQN and dueling as in DQN). A sequence's PER priority is `priority_eta * max |delta| +
    (1 - priority_eta) * mean |delta|` over its loss steps. Each hook gets a whole minibatch of
    sequences and runs it through the recurrent core in one call per network.

    Acting carries each env's state (`recurrent_act`; `EnvLoop` keeps it per env in an
    `ActingMemory` and resets it at each episode's end). `act` and `forward` take one step from
    the initial state: stateless callers (a shape check, a single-step tool) only.

    Args:
        obs_shape: one observation's shape.
        n_actions: number of discrete actions.
        recurrent: the core, `lstm` or `gru`.
        core_size: the core's hidden units.
        burn_in: steps at each sequence's start that only warm the state up (no loss there).
        n_step: rewards summed per target, inside the sequence.
        stored_state: start each sequence from its stored acting state (R2D2); False: from zeros
            (the comparison R2D2 made).
        priority_eta: the max's share in a sequence's priority.
        hidden_sizes: the encoder's fully connected widths.
        network: the encoder: `auto`, `mlp`, `nature-cnn` or `minatar-cnn`; or your own
            recurrent network (a `RecurrentNetwork`: `state_size`, `initial_state`, `unroll`).
        **settings: `DQN`'s other settings (lr, gamma, target_update_interval, double, dueling,
            loss, ...); the distributional heads, noisy nets, augmentation and action masks are
            not supported with a recurrent network.
    """

    stacked_targets = False  # the Double DQN choice reads the online network: one minibatch at a time

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        recurrent: CoreKind = "lstm",
        core_size: int = 128,
        burn_in: int = 40,
        n_step: int = 5,
        stored_state: bool = True,
        priority_eta: float = 0.9,
        hidden_sizes: Sequence[int] = (128,),
        network: Any = "auto",
        dueling: bool = False,
        **settings: Any,
    ) -> None:
        check_bounds(n_step=n_step, burn_in=burn_in, priority_eta=priority_eta, core_size=core_size)
        unsupported = [name for name in ("value_head", "noisy", "augmentation", "action_masks") if settings.get(name)]
        if unsupported:
            raise ConfigError(
                f"a recurrent DQN does not support {unsupported[0]} yet: leave it unset, or drop --recurrent"
            )
        if isinstance(network, RecurrentNetwork) and isinstance(network, torch.nn.Module):
            q_network: torch.nn.Module = network
        else:
            q_network = RecurrentQNetwork(obs_shape, n_actions, hidden_sizes, recurrent, core_size, dueling, network)
        super().__init__(obs_shape, n_actions, hidden_sizes=hidden_sizes, network=q_network, **settings)
        # what the checkpoint rebuilds from: these settings (the module spec DQN recorded would not do)
        self.hparams["network"], self.hparams["dueling"] = network if isinstance(network, str) else "auto", dueling
        self.burn_in, self.n_step, self.stored_state, self.priority_eta = burn_in, n_step, stored_state, priority_eta

    @property
    def recurrent_network(self) -> RecurrentNetwork:
        """The online Q-network, as the recurrent network it is."""
        return self.q_network  # type: ignore[return-value]

    @property
    def state_size(self) -> int:
        """Floats per recurrent state: what the replay keeps with each step."""
        return int(self.recurrent_network.state_size)

    # ---- the update's hooks, over sequences ---------------------------------------------------

    @torch.no_grad()
    def td_target(self, batch: SequenceBatch) -> Tensor:  # type: ignore[override]
        """n-step targets `(batch, length)` of every step: the bootstrap network (and the online one,
        for Double DQN) unrolled over the whole sequence from its start state (the burn-in included)."""
        start, prev_action, prev_reward = self._inputs(batch)
        bootstrap = self.target_network if self.target_network is not None else self.q_network
        q_next, _ = bootstrap.unroll(batch.obs, prev_action, prev_reward, start)  # type: ignore[operator]
        if self.double_q:
            online, _ = self.recurrent_network.unroll(batch.obs, prev_action, prev_reward, start)
            choice = online.argmax(dim=-1, keepdim=True)
        else:
            choice = q_next.argmax(dim=-1, keepdim=True)
        values = q_next.gather(-1, choice).squeeze(-1)  # (batch, length + 1)
        return sequence_targets(batch.reward, batch.terminated, batch.valid, values, self.gamma, self.n_step)

    def td_loss(self, batch: SequenceBatch, target: Tensor) -> TDLoss:  # type: ignore[override]
        """The masked loss over each sequence's real steps after the burn-in; `td_error` is the
        sequence's priority. A sequence that begins its episode starts from the exact initial state,
        which needs no warming up: its loss covers every step (`prev_action` -1 marks it)."""
        start, prev_action, prev_reward = self._inputs(batch)
        length, burn = batch.action.shape[1], min(self.burn_in, batch.action.shape[1])
        fresh = batch.prev_action < 0  # (batch,): the sequence begins its episode
        obs, prev_action, prev_reward = batch.obs[:, :length], prev_action[:, :length], prev_reward[:, :length]
        net = self.recurrent_network
        if burn == 0:
            q, _ = net.unroll(obs, prev_action, prev_reward, start)
        else:
            # the burn-in warms a stored state up; its gradient stops there (R2D2), except in a
            # sequence that begins its episode, whose first steps are learned from like the rest
            q_burn, state = net.unroll(obs[:, :burn], prev_action[:, :burn], prev_reward[:, :burn], start)
            state = torch.where(fresh[:, None], state, state.detach())
            q_rest, _ = net.unroll(obs[:, burn:], prev_action[:, burn:], prev_reward[:, burn:], state)
            q = torch.cat([q_burn, q_rest], dim=1)
        q_taken = q.gather(-1, batch.action[..., None]).squeeze(-1)
        learned = batch.valid.clone()
        learned[:, :burn] &= fresh[:, None]
        huber = self.hparams.get("loss") == "huber"
        loss, q_mean, priority = masked_sequence_loss(q_taken, target, learned, batch.weight, huber, self.priority_eta)
        return TDLoss(loss, q_mean, priority)

    def _inputs(self, batch: SequenceBatch) -> tuple[Tensor, Tensor, Tensor]:
        """The start state `(batch, state_size)` and the previous action and reward before each
        observation `(batch, length + 1)`."""
        start = batch.state if self.stored_state else torch.zeros_like(batch.state)
        prev_action = torch.cat([batch.prev_action[:, None], batch.action], dim=1)
        prev_reward = torch.cat([batch.prev_reward[:, None], batch.reward], dim=1)
        return start, prev_action, prev_reward

    # ---- acting with memory -------------------------------------------------------------------

    def initial_state(self, n: int) -> np.ndarray:
        """The state `(n, state_size)` float32 of an episode's start."""
        return self.recurrent_network.initial_state(n).float().cpu().numpy()

    def policy(self, n: int, epsilon: float = 0.0, rng: np.random.Generator | None = None) -> ActingMemory:
        """A policy for `n` envs that keeps each env's state (see `DQN.policy`), fed rewards as the
        training env gave them (an Atari game's clipped to their sign)."""
        return ActingMemory(self, n, epsilon, rng, clip_rewards=is_atari(self.hparams.get("env_id") or ""))

    @torch.no_grad()
    def recurrent_act(
        self,
        obs: np.ndarray,
        state: np.ndarray,
        prev_action: np.ndarray,
        prev_reward: np.ndarray,
        epsilon: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Epsilon-greedy actions `(n,)` int64 for observations `(n, *obs_shape)` given each env's state
        `(n, state_size)` and previous action (-1: none) and reward `(n,)`; and the states after.
        The network runs on every step, random ones too: the state must follow the episode."""
        device = self.device
        q, next_state = self.recurrent_network.unroll(
            torch.as_tensor(obs, device=device).unsqueeze(1),
            torch.as_tensor(prev_action, dtype=torch.int64, device=device).unsqueeze(1),
            torch.as_tensor(prev_reward, dtype=torch.float32, device=device).unsqueeze(1),
            torch.as_tensor(state, device=device),
        )
        greedy = q[:, 0].argmax(dim=1).cpu().numpy()
        draws = exploration(self, len(obs), epsilon, rng)
        actions = np.where(draws[0], draws[1], greedy) if draws is not None else greedy
        return actions, next_state.float().cpu().numpy()
