"""A Q-network as a policy: epsilon-greedy actions, Q-values, and loading one from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from typing_extensions import Self

from dqn_lightning.acting.action_masks import random_legal
from dqn_lightning.learner.checkpoint_file import check_env_matches, read_checkpoint
from dqn_lightning.learner.networks import QNetwork
from dqn_lightning.learner.noisy import resample_noise
from dqn_lightning.learner.rng_state import OwnGenerators
from dqn_lightning.learner.td import legal_q
from dqn_lightning.learner.user_networks import import_class
from dqn_lightning.learner.validation import GreedyValidation
from dqn_lightning.learner.value_heads import ValueHead


def class_path(cls: type) -> str:
    """`pkg.module.Class`: where a checkpoint's module class is imported from when it is loaded."""
    return f"{cls.__module__}.{cls.__qualname__}"


class QPolicy(GreedyValidation):
    """The acting half of `DQN`: what `EnvLoop`, evaluation, `play.py` and the exports call.

    The subclass builds `q_network` (raw outputs per action), `value_head` (outputs -> Q-values)
    and the noise and exploration generators.
    """

    q_network: nn.Module
    value_head: ValueHead
    n_actions: int
    noisy: bool
    _generators: OwnGenerators

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool = True,
        **kwargs: Any,
    ) -> Self:
        """Lightning's loader, after checking that the file is a DQN checkpoint of ours.

        A missing, truncated or foreign file raises a one-line `ConfigError` instead of a
        traceback from deep inside torch; so does `env_id=` naming an env whose observation or
        action sizes differ from the network's. Loading is weights-only: no code in the file runs.
        A checkpoint of a subclass (a DQN variant: `dqn_class` in the file) loads as that class,
        imported by its path, so `DQN.load_from_checkpoint` serves every variant's tools.
        """
        checkpoint = read_checkpoint(checkpoint_path)
        recorded = checkpoint.get("dqn_class")
        if recorded is not None and recorded != class_path(cls):
            variant = import_class(recorded, "this checkpoint's DQN class", base=nn.Module)
            if issubclass(variant, cls) and variant is not cls:
                return variant.load_from_checkpoint(  # type: ignore[attr-defined,no-any-return]
                    checkpoint_path, map_location, hparams_file, strict, weights_only, **kwargs
                )
        if kwargs.get("env_id") is not None:  # acting in another env: its sizes must fit the network
            check_env_matches(checkpoint["hyper_parameters"], kwargs["env_id"], checkpoint_path)
        return super().load_from_checkpoint(  # type: ignore[return-value]
            checkpoint_path, map_location, hparams_file, strict, weights_only=weights_only, **kwargs
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values `(batch, n_actions)` for observations `(batch, *obs_shape)` as the env gives them."""
        return self.value_head.q_values(self.q_network(obs))

    # ---- acting -------------------------------------------------------------------------------

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        epsilon: float = 0.0,
        rng: np.random.Generator | None = None,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Epsilon-greedy actions `(n,)` int64 for observations `(n, *obs_shape)`.

        Runs the online network on the module's device, and not at all when every action is
        random. `rng` draws the exploration; when not given, a generator of the module's own,
        seeded from torch's seed (so `seed_everything` makes it reproducible). `mask` `(n,
        n_actions)` bool: the legal actions (action masks); exploration draws among them and the
        greedy action is the best of them (a row with none legal counts all as legal).
        """
        n = obs.shape[0]
        if epsilon > 0.0:
            # one uniform draw u per row: explore when u < epsilon, and then u / epsilon is
            # itself uniform on [0, 1), which picks the random action (the k-th legal one)
            u = np.asarray((rng if rng is not None else self._generators.numpy).random(n))
            explore = u < epsilon
            if mask is None:
                random_actions = (u / epsilon * self.n_actions).astype(np.int64)
            else:
                random_actions = random_legal(u / epsilon, mask)
            if explore.all():
                return random_actions
        if self.noisy and self.training:  # fresh noise for each acting step (mean weights in eval mode)
            resample_noise(self.q_network, self._generators.noise)
        if mask is None:
            greedy = self.q_network.greedy_numpy(obs) if isinstance(self.q_network, QNetwork) else None
            if greedy is None:
                greedy = self(torch.as_tensor(obs, device=self.device)).argmax(dim=1).cpu().numpy()
        else:
            q = self(torch.as_tensor(obs, device=self.device))
            greedy = legal_q(q, torch.as_tensor(mask, dtype=torch.bool, device=q.device)).argmax(dim=1).cpu().numpy()
        return np.where(explore, random_actions, greedy) if epsilon > 0.0 else greedy
