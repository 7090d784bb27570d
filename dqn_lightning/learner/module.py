"""The learner: the Q-learning update as two public hooks, `td_target` and `td_loss`, in a
LightningModule that holds the rest as parts: the rounds of updates (`update_rounds`), the
optimizer steps and target copies (`optimizer_steps`), greedy evaluation (`validation`) and
epsilon-greedy acting (`policy`)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from typing_extensions import Self

from dqn_lightning.acting.env_loop import find_env_loop
from dqn_lightning.acting.envs import env_spaces
from dqn_lightning.acting.evaluation import Policy
from dqn_lightning.acting.interface import StepOutput
from dqn_lightning.bounds import check_bounds
from dqn_lightning.learner.augmentation import Augmentation
from dqn_lightning.learner.checkpoint_file import check_env_matches, class_path, read_checkpoint, saved_class
from dqn_lightning.learner.networks import NetworkName
from dqn_lightning.learner.noisy import resample_noise
from dqn_lightning.learner.optimizer_steps import OptimizerSteps
from dqn_lightning.learner.optimizers import check_optimizer
from dqn_lightning.learner.policy import epsilon_greedy
from dqn_lightning.learner.rng_state import OwnGenerators, capture_rng_states, restore_rng_states
from dqn_lightning.learner.td import TDLoss, check_td_settings
from dqn_lightning.learner.update_rounds import UpdateRounds, target_pass_of
from dqn_lightning.learner.user_networks import choose_q_network, network_or_alias
from dqn_lightning.learner.validation import GreedyEvaluation
from dqn_lightning.learner.value_heads import apply_keeping_dtype, build_value_head
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.replay.dataset import DeferredBatch


class DQN(pl.LightningModule):
    """Deep Q-learning as a LightningModule.

    `training_step` takes one gradient step per minibatch of the (stacked) batch that
    `ReplayDataset` yields, with the Bellman MSE loss
    `(Q(s, a) - (r + gamma * (1 - terminated) * max_a' Q_target(s', a')))^2`.
    The algorithm is two public hooks, `td_target` and `td_loss`: override them in a subclass
    to make a DQN variant (docs: "Your own variant"); every update path calls them.
    Experience comes from the `EnvLoop` callback, which must be on the Trainer.
    Greedy evaluation runs as Lightning's validation loop (`GreedyEvaluation`), so
    `ModelCheckpoint` can keep the best policy by `eval/return_mean`.

    Args:
        obs_shape: shape of one observation: `(C, H, W)` images get a CNN, anything else an MLP
            on the flattened vector (see `build_q_network`).
        n_actions: number of discrete actions.
        hidden_sizes: hidden layer widths of the MLP (for images: of the layers after the convolutions).
        lr: learning rate.
        action_masks: act, evaluate and bootstrap among the legal actions only: `act(..., mask=)`,
            evaluation from `info["action_mask"]`, and the batches' `next_mask` (see `action_masks`).
        lr_end: decay the learning rate linearly from `lr` to this over the env loop's
            `total_timesteps` (None: constant). Late updates then move the network less, so
            the agent at the end of the budget is not one caught mid-swing.
        gamma: discount factor in [0, 1].
        target_update_interval: gradient steps between hard copies of the online network into
            the target network; 0 keeps no target network and bootstraps from the online
            network itself.
        env_id: the Gymnasium env this module acts in; used to build the evaluation env and
            by tools that load a checkpoint (kept in the checkpoint's hyperparameters).
        env_kwargs: that env's constructor arguments, for evaluation and the tools likewise
            (`{"repeat_action_probability": 0.0}`: an ALE game without sticky actions).
        eval_episodes: greedy episodes per evaluation (0 disables evaluation).
        eval_seed: base of the evaluation episodes' env seeds.
        double: Double DQN: the online network picks the next action, the target network values it.
        dueling: a dueling Q-network head (`V + A - mean(A)`).
        loss: `mse` (the Bellman MSE of the design) or `huber`.
        max_grad_norm: clip the gradient's global norm to this before each update (None: no clipping).
        tau: target update weight: 1.0 copies the online network every `target_update_interval`
            gradient steps; below 1 blends it in (`target <- tau * online + (1 - tau) * target`).
        network: the online Q-network: one of ours by name, `auto` (chosen by observation shape),
            `mlp`, `nature-cnn`, `data-efficient-cnn` (DER's) or `minatar-cnn`; or your own: an `nn.Module` mapping
            `(batch, *obs_shape)` observations to `(batch, n_actions)` Q-values, or its import path
            `pkg.module.Class` / `{"class_path": ..., "init_args": {...}}`, which checkpoints record
            (see `user_networks`).
        optimizer: `adam` or `rmsprop` (torch's).
        optimizer_options: that optimizer's options beyond lr, by torch's names (`eps`; for
            rmsprop also `alpha`, `centered`); unset ones keep torch's defaults.
        q_network: deprecated alias of `network` for your own module (pre-1.0; it will go).
        value_head: what the outputs mean (see `value_heads`): None or `expected` (DQN, with
            `loss`), `{"kind": "c51", "atoms": 51, "v_min": -10, "v_max": 10}` or `{"kind": "qr",
            "quantiles": 200}`.
        noisy: noisy linear layers (factorised Gaussian, sigma0 0.5) for exploration; greedy in eval mode.
        augmentation: image augmentation of every update's `obs` and `next_obs` (DrQ): `{"shift": 4,
            "intensity": 0.05}` for random shifts of up to 4 pixels and intensity jitter (see
            `augmentation`); None: none.

    Example:
        >>> import numpy as np
        >>> model = DQN.from_env("CartPole-v1", hidden_sizes=(64, 64))
        >>> model.act(np.zeros((1, 4), dtype=np.float32)).shape
        (1,)
    """

    #: `td_target` may be given the minibatches up to the next target copy stacked `(k, batch, ...)`
    #: in one call (returning `(k, batch)`), which needs a target of the frozen target network and
    #: the batch alone. An override of `td_target` is called one minibatch at a time, just before
    #: its update, unless its class (or one below it) sets this to True.
    stacked_targets: ClassVar[bool] = True

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        hidden_sizes: Sequence[int] = (128, 128),
        lr: float = 1e-3,
        gamma: float = 0.99,
        target_update_interval: int = 500,
        env_id: str | None = None,
        eval_episodes: int = 20,
        eval_seed: int = 0,
        double: bool = False,
        dueling: bool = False,
        loss: Literal["mse", "huber"] = "mse",
        max_grad_norm: float | None = None,
        tau: float = 1.0,
        network: NetworkName | nn.Module | str | Mapping[str, Any] = "auto",
        optimizer: str = "adam",
        optimizer_options: Mapping[str, float | bool] | None = None,
        q_network: nn.Module | str | Mapping[str, Any] | None = None,
        value_head: str | Mapping[str, Any] | None = None,
        noisy: bool = False,
        lr_end: float | None = None,
        action_masks: bool = False,
        augmentation: Mapping[str, float] | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_bounds(lr_end=lr_end)
        check_td_settings(lr, gamma, target_update_interval, eval_episodes, loss, tau, max_grad_norm, double)
        check_optimizer(optimizer, optimizer_options or {})
        obs_shape, hidden_sizes = tuple(int(d) for d in obs_shape), tuple(int(h) for h in hidden_sizes)
        optimizer_options = dict(optimizer_options or {})  # saved as a plain dict: weights-only loadable
        augmentation = dict(augmentation) if augmentation else None
        env_kwargs = dict(env_kwargs) if env_kwargs else None
        network = network_or_alias(network, q_network)
        self.save_hyperparameters(ignore=["q_network", "network"])
        self.automatic_optimization = False  # several gradient steps per training step
        self.value_head = build_value_head(value_head, loss)
        outputs = self.value_head.outputs_per_action
        self.q_network, spec = choose_q_network(network, obs_shape, n_actions, hidden_sizes, dueling, outputs, noisy)
        self.hparams["network"] = spec  # a name, or how to rebuild a user's network (plain data: weights-only loadable)
        self.target_network: torch.nn.Module | None = None
        if target_update_interval > 0:
            self.target_network = copy.deepcopy(self.q_network).requires_grad_(False)
        self.n_actions, self.gamma, self.target_update_interval = n_actions, gamma, target_update_interval
        # (not self.double: nn.Module.double() casts to float64)
        self.double_q, self.noisy = double, noisy
        self.augmentation = Augmentation(**augmentation) if augmentation else None
        if self.augmentation is not None:
            self.augmentation.check_fits(obs_shape)
        # the parts
        self.update_rounds = UpdateRounds(target_pass_of(type(self), DQN))
        self.optimizer_steps = OptimizerSteps(max_grad_norm, tau)
        self.evaluation = GreedyEvaluation(eval_episodes)
        self._generators = OwnGenerators()  # exploration draws and noisy layers' noise
        # updates so far; Lightning's global_step counts only those made through its optimizer
        # wrapper: one per training step on one process (see training_step)
        self.gradient_step = 0
        self._transfer_hooked = False  # a subclass overrides a batch-transfer hook (set at fit start)
        self._plain_step = type(self).training_step is not DQN.training_step  # a subclass's own
        # running (loss sum, Q(s,a) mean sum, updates) between log writes, on the module's device
        # (persistent: a resumed run continues the same running means)
        self._log_sums: torch.Tensor
        self.register_buffer("_log_sums", torch.zeros(3))

    # ---- the algorithm: override these two for a variant --------------------------------------

    @torch.no_grad()
    def td_target(self, batch: ReplayBatch) -> Tensor:
        """The Bellman target of each transition in `batch`, with no gradient:
        `reward + gamma ** steps * (1 - terminated) * max_a' Q_target(next_obs, a')`.

        `batch`: one minibatch `(batch, ...)`, or stacked ones `(k, batch, ...)` (`stacked_targets`).
        Returns `(batch,)` (`(k, batch)`); C51 and QR targets are distributions `(..., atoms)`.
        Double DQN picks a' with the online network; action masks pick among `next_mask`'s legal
        actions; without a target network the online network bootstraps itself.
        """
        return self.bellman_target(batch)

    def td_loss(self, batch: ReplayBatch, target: Tensor) -> TDLoss:
        """The loss of one minibatch `(batch, ...)` against its `target` from `td_target`.

        MSE (or Huber) between Q(s, a) and the target, each row weighted by `batch.weight` under
        prioritized replay; C51: cross-entropy, QR: quantile Huber. `td_error` `(batch,)` becomes
        the rows' new PER priorities (its magnitude).
        """
        return TDLoss(*self.value_head.loss(self.q_network(batch.obs), batch.action, target, batch.weight))

    @torch.no_grad()
    def bellman_target(self, batch: ReplayBatch, next_out: Tensor | None = None) -> Tensor:
        """The built-in `td_target`: the value head's target from the bootstrap network's outputs for
        `next_obs` (`next_out` `(batch, ...)`, when one pass over more minibatches made them already)."""
        stacked = batch.action.dim() == 2
        reward = batch.reward if stacked else batch.reward[None]
        next_obs = batch.next_obs if stacked else batch.next_obs[None]
        if next_out is None:
            next_out = self.bootstrap_pass(next_obs).flatten(0, 1)
        gamma: float | Tensor = self.gamma if batch.steps is None else self.gamma ** batch.steps.flatten()
        online = None
        if self.double_q:  # the online network's choice; when the target is a copy of it, its pass is that one
            same = self.optimizer_steps.target_is_online(self)
            online = next_out if same else self.q_network(next_obs.flatten(0, 1))
        mask = batch.next_mask.flatten(0, batch.next_mask.dim() - 2) if batch.next_mask is not None else None
        target = self.value_head.target(reward.flatten(), batch.terminated.flatten(), gamma, next_out, online, mask)
        return target.view(*batch.reward.shape, *target.shape[1:])

    @torch.no_grad()
    def bootstrap_pass(self, next_obs: Tensor) -> Tensor:
        """The bootstrap network's outputs `(k, batch, ...)` for `(k, batch, *obs_shape)` next observations,
        in one pass (the target network's noise redrawn for it)."""
        bootstrap = self.target_network if self.target_network is not None else self.q_network
        if self.noisy and bootstrap is self.target_network:
            resample_noise(bootstrap, self._generators.noise)
        out = bootstrap(next_obs.flatten(0, 1))
        return out.view(*next_obs.shape[:2], *out.shape[1:])

    # ---- acting -------------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env_id: str, **hparams: Any) -> Self:
        """Builds a module sized for `env_id`'s spaces (a `ConfigError` if DQN cannot act there)."""
        spaces = env_spaces(env_id)
        return cls(obs_shape=spaces.obs_shape, n_actions=spaces.n_actions, env_id=env_id, **hparams)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values `(batch, n_actions)` for observations `(batch, *obs_shape)` as the env gives them."""
        return self.value_head.q_values(self.q_network(obs))

    def act(
        self,
        obs: np.ndarray,
        epsilon: float = 0.0,
        rng: np.random.Generator | None = None,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Epsilon-greedy actions `(n,)` int64 for observations `(n, *obs_shape)`.

        `rng` draws the exploration; when not given, a generator of the module's own, seeded from
        torch's seed (so `seed_everything` makes it reproducible). `mask` `(n, n_actions)` bool: the
        legal actions (action masks); exploration draws among them and the greedy action is the
        best of them (a row with none legal counts all as legal).
        """
        return epsilon_greedy(self, obs, epsilon, rng, mask)

    def policy(self, n: int, epsilon: float = 0.0, rng: np.random.Generator | None = None) -> Policy:
        """A policy for `n` envs stepped together, as `evaluate` and the tools play it: `policy(obs,
        mask=None) -> actions` (a recurrent module's also keeps each env's state: `ActingMemory`)."""
        return functools.partial(_act_with, self, epsilon, rng)

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
        if kwargs.get("env_id") is not None:  # acting in another env: its sizes must fit the network
            check_env_matches(checkpoint["hyper_parameters"], kwargs["env_id"], checkpoint_path)
        loaded_as = saved_class(checkpoint, cls)
        return super(DQN, loaded_as).load_from_checkpoint(  # type: ignore[misc,return-value]
            checkpoint_path, map_location, hparams_file, strict, weights_only=weights_only, **kwargs
        )

    # ---- training -----------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        self._generators.rank = self.global_rank  # before the first noise draw: each rank its own noise
        self.evaluation.setup(self, stage)

    def on_fit_start(self) -> None:
        if find_env_loop(self.trainer) is None:
            raise RuntimeError(
                "DQN collects no experience by itself: add the env-stepping callback, "
                "Trainer(callbacks=[EnvLoop(env_id, buffer, ...)]), whose buffer feeds the train dataloader"
            )
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        self.update_rounds.lean = self.trainer.world_size == 1 and scaler is None
        hooks = ("transfer_batch_to_device", "on_after_batch_transfer")
        self._transfer_hooked = any(getattr(type(self), hook) is not getattr(DQN, hook) for hook in hooks)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if isinstance(batch, DeferredBatch) and self._plain_step:
            # a subclass's own training_step gets one round's minibatch it can read (batch.obs, ...),
            # drawn now, after this round's env steps: Lightning moves a batch just before its step
            batch = batch.one_round(pin=device.type == "cuda")
        if isinstance(batch, DeferredBatch):  # drawn round by round in training_step, moved there
            return batch
        if isinstance(batch, ReplayBatch):  # frame stacks: each frame copied once (see ReplayBatch)
            return batch.to_device(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def training_step(self, batch: DeferredBatch | ReplayBatch, batch_idx: int) -> StepOutput:
        """One gradient step per minibatch, round after round.

        `ReplayDataset` batches are `DeferredBatch`es of rounds: each round the env loop steps
        the envs, then the buffer draws `(gradient_steps, batch_size, ...)` minibatches, which
        Lightning's strategy moves to this module's device (on a GPU gathered into pinned
        memory first). A `ReplayBatch` from another dataloader is one round, already moved.

        The last update of a batch goes through Lightning (`manual_backward`, the wrapped
        optimizer: hooks, precision, step counting). When nothing needs Lightning's wrapper on
        every update (one process, no gradient scaler), the others call autograd and the
        optimizer directly, so Lightning's per-update hook calls are paid once per batch.
        """
        return self.update_rounds.train_batch(self, batch)

    def sync_target(self) -> None:
        """Copies the online network's weights into the target network (blends them in if tau < 1)."""
        self.optimizer_steps.copy_target(self)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_steps.optimizer(self)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer_steps.clip(self, optimizer)

    # ---- evaluation ---------------------------------------------------------------------------

    @property
    def eval_history(self) -> list[dict[str, float]]:
        """One row per evaluation of this process: env steps, training seconds, return mean and std."""
        return self.evaluation.history

    def val_dataloader(self) -> DataLoader[int]:
        return self.evaluation.dataloader()

    def validation_step(self, batch: int, batch_idx: int) -> None:
        row = self.evaluation.run(self)
        # a logged "step" becomes the x-axis of this flush: eval curves are plotted against env steps
        metrics = {"eval/return_mean": row["return_mean"], "eval/return_std": row["return_std"]}
        self.log_dict({**metrics, "step": float(row["env_steps"])}, batch_size=1)

    def teardown(self, stage: str) -> None:
        self.close_envs()

    def close_envs(self) -> None:
        """Closes the evaluation env (also called by EnvLoop when fit fails)."""
        self.evaluation.close()

    # ---- checkpoints --------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = capture_rng_states() | self._generators.state()
        if self._trainer is not None and self.trainer.world_size > 1:
            # every rank calls this and rank 0 writes the file: keep each rank's own streams
            ranks: list[Any] = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(ranks, self._generators.state())
            states["ranks"] = ranks
        checkpoint["rng_states"] = states
        checkpoint["eval_history"] = self.eval_history
        checkpoint["gradient_step"] = self.gradient_step
        if "<locals>" not in type(self).__qualname__:  # a class defined in a function cannot be imported back
            checkpoint["dqn_class"] = class_path(type(self))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.evaluation.history = list(checkpoint.get("eval_history", []))
        self.gradient_step = int(checkpoint.get("gradient_step", 0))
        states = checkpoint.get("rng_states")
        if states is None:
            return
        restore_rng_states(states)
        ranks, rank = states.get("ranks"), self.global_rank
        self._generators.load_state(ranks[rank] if ranks and rank < len(ranks) else states)

    def _apply(self, fn: Any, recurse: bool = True) -> Self:
        # the running sums and the update count are not weights: they stay float32 (see value_heads)
        apply_keeping_dtype(self, ("_log_sums",), lambda: super(DQN, self)._apply(fn, recurse))
        return self


def _act_with(
    dqn: DQN, epsilon: float, rng: np.random.Generator | None, obs: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """`dqn.act` with a fixed epsilon and generator (a module-level function: `DQN.policy` pickles)."""
    return dqn.act(obs, epsilon, rng, mask=mask)
