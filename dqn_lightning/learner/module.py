"""The learner: online and target Q-networks, and the training step over a batch's rounds (the
update itself: `td_updates`; acting: `policy`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from pytorch_lightning.core.optimizer import LightningOptimizer
from torch import Tensor, nn

from dqn_lightning.acting.env_loop import find_env_loop
from dqn_lightning.acting.envs import env_spaces
from dqn_lightning.acting.interface import StepOutput
from dqn_lightning.bounds import check_bounds
from dqn_lightning.learner.networks import NetworkName
from dqn_lightning.learner.optimizers import check_optimizer
from dqn_lightning.learner.policy import class_path
from dqn_lightning.learner.rng_state import OwnGenerators, capture_rng_states, restore_rng_states
from dqn_lightning.learner.td import TDLoss, check_td_settings
from dqn_lightning.learner.td_updates import TDUpdates, target_pass_of
from dqn_lightning.learner.user_networks import choose_q_network, network_or_alias
from dqn_lightning.learner.value_heads import apply_keeping_dtype, build_value_head
from dqn_lightning.private_api import writes_logs_now
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.replay.dataset import DeferredBatch, Rounds


class DQN(TDUpdates):
    """Deep Q-learning as a LightningModule.

    `training_step` takes one gradient step per minibatch of the (stacked) batch that
    `ReplayDataset` yields, with the Bellman MSE loss
    `(Q(s, a) - (r + gamma * (1 - terminated) * max_a' Q_target(s', a')))^2`.
    The algorithm is two public hooks, `td_target` and `td_loss`: override them in a subclass
    to make a DQN variant (docs: "Your own variant"); every update path calls them.
    Experience comes from the `EnvLoop` callback, which must be on the Trainer.
    Greedy evaluation runs as Lightning's validation loop (`GreedyValidation`), so
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
        eval_episodes: greedy episodes per evaluation (0 disables evaluation).
        eval_seed: base of the evaluation episodes' env seeds.
        double: Double DQN: the online network picks the next action, the target network values it.
        dueling: a dueling Q-network head (`V + A - mean(A)`).
        loss: `mse` (the Bellman MSE of the design) or `huber`.
        max_grad_norm: clip the gradient's global norm to this before each update (None: no clipping).
        tau: target update weight: 1.0 copies the online network every `target_update_interval`
            gradient steps; below 1 blends it in (`target <- tau * online + (1 - tau) * target`).
        network: the online Q-network: one of ours by name, `auto` (chosen by observation shape),
            `mlp`, `nature-cnn` or `minatar-cnn`; or your own: an `nn.Module` mapping
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
    ) -> None:
        super().__init__(eval_episodes)
        check_bounds(lr_end=lr_end)
        check_td_settings(lr, gamma, target_update_interval, eval_episodes, loss, tau, max_grad_norm, double)
        check_optimizer(optimizer, optimizer_options or {})
        obs_shape, hidden_sizes = tuple(int(d) for d in obs_shape), tuple(int(h) for h in hidden_sizes)
        optimizer_options = dict(optimizer_options or {})  # saved as a plain dict: weights-only loadable
        network = network_or_alias(network, q_network)
        self.save_hyperparameters(ignore=["q_network", "network"])
        self.automatic_optimization = False  # several gradient steps per training_step
        self.value_head = build_value_head(value_head, loss)
        outputs = self.value_head.outputs_per_action
        self.q_network, spec = choose_q_network(network, obs_shape, n_actions, hidden_sizes, dueling, outputs, noisy)
        self.hparams["network"] = spec  # a name, or how to rebuild a user's network (plain data: weights-only loadable)
        self.target_network: torch.nn.Module | None = None
        if target_update_interval > 0:
            self.target_network = copy.deepcopy(self.q_network).requires_grad_(False)
        self.n_actions = n_actions
        self.gamma = gamma
        self.target_update_interval = target_update_interval
        # (not self.double: nn.Module.double() casts to float64)
        self.double_q, self.tau, self.max_grad_norm = double, tau, max_grad_norm
        self.noisy = noisy
        self._generators = OwnGenerators()  # exploration draws and noisy layers' noise
        # updates so far; Lightning's global_step counts only those made through its optimizer
        # wrapper: one per training step on one process (see training_step)
        self.gradient_step = 0
        self._lean_updates = False
        self._transfer_hooked = False  # a subclass overrides a batch-transfer hook (set at fit start)
        # running (loss sum, Q(s,a) mean sum, updates) between log writes, on the module's device
        # (persistent: a resumed run continues the same running means)
        self._log_sums: torch.Tensor
        self.register_buffer("_log_sums", torch.zeros(3))
        self._target_pass = target_pass_of(type(self), DQN)  # how the update calls td_target
        self._plain_step = type(self).training_step is not DQN.training_step  # a subclass's own

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
        return self._builtin_target(batch)

    def td_loss(self, batch: ReplayBatch, target: Tensor) -> TDLoss:
        """The loss of one minibatch `(batch, ...)` against its `target` from `td_target`.

        MSE (or Huber) between Q(s, a) and the target, each row weighted by `batch.weight` under
        prioritized replay; C51: cross-entropy, QR: quantile Huber. `td_error` `(batch,)` becomes
        the rows' new PER priorities (its magnitude).
        """
        return TDLoss(*self.value_head.loss(self.q_network(batch.obs), batch.action, target, batch.weight))

    # ---- learning -----------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env_id: str, **hparams: Any) -> DQN:
        """Builds a module sized for `env_id`'s spaces (a `ConfigError` if DQN cannot act there)."""
        spaces = env_spaces(env_id)
        return cls(obs_shape=spaces.obs_shape, n_actions=spaces.n_actions, env_id=env_id, **hparams)

    def _apply(self, fn: Any, recurse: bool = True) -> DQN:
        # the running sums and the update count are not weights: they stay float32 (see value_heads)
        apply_keeping_dtype(self, ("_log_sums",), lambda: super(DQN, self)._apply(fn, recurse))
        return self

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self._generators.rank = self.global_rank  # before the first noise draw: each rank its own noise

    def on_fit_start(self) -> None:
        if find_env_loop(self.trainer) is None:
            raise RuntimeError(
                "DQN collects no experience by itself: add the env-stepping callback, "
                "Trainer(callbacks=[EnvLoop(env_id, buffer, ...)]), whose buffer feeds the train dataloader"
            )
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        self._lean_updates = self.trainer.world_size == 1 and scaler is None
        hooks = ("transfer_batch_to_device", "on_after_batch_transfer")
        self._transfer_hooked = any(getattr(type(self), hook) is not getattr(DQN, hook) for hook in hooks)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # a subclass's own training_step gets one round's minibatch it can read (batch.obs, ...),
        # drawn now, after this round's env steps: Lightning calls this just before the step
        if isinstance(batch, DeferredBatch) and self._plain_step:
            return batch.one_round(pin=self.device.type == "cuda")
        return batch

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
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
        optimizer = self.optimizers()
        assert isinstance(optimizer, LightningOptimizer)  # one optimizer: configure_optimizers
        rounds: Rounds | None = None
        if isinstance(batch, DeferredBatch):
            rounds = batch.rounds(pin=self.device.type == "cuda")
        losses: list[Tensor] = []
        output: StepOutput = {}
        # the running sums as views, taken once per batch (an index op costs as much as an add)
        sums = (self._log_sums[0], self._log_sums[1])
        # on the CPU the drawn batch is where the module is: Lightning's transfer call is skipped
        # unless a subclass hooks into it
        move = rounds is not None and (self.device.type != "cpu" or self._transfer_hooked)
        follow_lr = self.hparams.get("lr_end") is not None
        drawn: ReplayBatch
        for drawn, last in rounds if rounds is not None else ((batch, True),):  # type: ignore[assignment]
            if follow_lr:  # per round: the env-step count moved
                self._follow_lr_schedule(optimizer.optimizer)
            host_slot = drawn.slot  # PER slots go back to the buffer from the host copy: no sync
            minibatches = self.trainer.strategy.batch_to_device(drawn) if move else drawn
            priority = self._learn(minibatches, optimizer, last, losses, sums)
            if priority is None:
                continue
            if rounds is not None:  # written before the next round draws
                rounds.write_priorities(host_slot, priority)  # type: ignore[arg-type]  # PER batches have slots
            else:  # the env loop writes them into its prioritized buffer
                output["slot"], output["priority"] = drawn.slot, priority  # type: ignore[typeddict-item]
        self._log_sums[2] += len(losses)  # a Python number: no host-to-device copy
        batch_losses = torch.stack(losses)
        fault = self._first_non_finite(batch_losses)
        if fault is not None:
            output["fault"] = fault
        if writes_logs_now(self.trainer):
            # self.log costs about as much as a gradient step, so it runs only when Lightning will
            # write; the values are means over every update since the last write, plotted
            # against gradient steps (a logged "step" is the x-axis of its flush).
            loss_sum, q_sum, count = self._log_sums
            self.log_dict(
                {"train/loss": loss_sum / count, "train/q_mean": q_sum / count, "step": float(self.gradient_step)},
                batch_size=1,
            )
            self._log_sums.zero_()
        return output

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
        self.eval_history = list(checkpoint.get("eval_history", []))
        self.gradient_step = int(checkpoint.get("gradient_step", 0))
        states = checkpoint.get("rng_states")
        if states is None:
            return
        restore_rng_states(states)
        ranks, rank = states.get("ranks"), self.global_rank
        self._generators.load_state(ranks[rank] if ranks and rank < len(ranks) else states)
