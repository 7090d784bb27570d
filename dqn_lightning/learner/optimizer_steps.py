"""The optimizer side of `DQN`: one gradient step, clipping under every precision, the learning-rate
schedule, the target network's copies, and the optimizer itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from pytorch_lightning.core.optimizer import LightningOptimizer
from pytorch_lightning.plugins.precision import MixedPrecision

from dqn_lightning.acting.env_loop import find_env_loop
from dqn_lightning.acting.interface import NonFiniteLoss
from dqn_lightning.learner.optimizers import build_optimizer
from dqn_lightning.private_api import copy_parameters, direct_update

if TYPE_CHECKING:
    from dqn_lightning.learner.module import DQN


class OptimizerSteps:
    """Gradient steps and target copies of a `DQN`: `max_grad_norm` clips each step's gradient norm
    (None: no clipping); `tau` blends the online weights into the target network's (1: a copy)."""

    def __init__(self, max_grad_norm: float | None, tau: float) -> None:
        self.max_grad_norm, self.tau = max_grad_norm, tau

    def step(self, dqn: DQN, optimizer: LightningOptimizer, loss: torch.Tensor, through_lightning: bool) -> None:
        """One gradient step: through Lightning's wrapper (hooks, precision, step count) or directly."""
        if through_lightning:
            optimizer.zero_grad(set_to_none=True)
            dqn.manual_backward(loss)
            optimizer.step()  # clips in DQN.on_before_optimizer_step
        else:
            direct_update(optimizer.optimizer, loss, self.max_grad_norm)

    def clip(self, dqn: DQN, optimizer: torch.optim.Optimizer) -> None:
        """Clips the gradients in Lightning's `on_before_optimizer_step`: there a gradient scaler
        (16-mixed) has unscaled them already, while clipping before step() would clip the scaled
        ones, cutting the norm to max_grad_norm / scale."""
        if self.max_grad_norm is None:
            return
        if self._clips_itself(dqn, optimizer):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)  # what Lightning's clip calls
        else:
            dqn.clip_gradients(optimizer, gradient_clip_val=self.max_grad_norm, gradient_clip_algorithm="norm")

    @staticmethod
    def _clips_itself(dqn: DQN, optimizer: torch.optim.Optimizer) -> bool:
        """bf16-mixed with a fused optimizer: no scaler, so the gradients are true ones and a plain clip
        is right, but Lightning's mixed-precision plugin refuses to clip any fused optimizer."""
        plugin = dqn.trainer.precision_plugin
        fused = getattr(optimizer, "_step_supports_amp_scaling", False)
        return isinstance(plugin, MixedPrecision) and getattr(plugin, "scaler", None) is None and fused

    @staticmethod
    def follow_lr_schedule(dqn: DQN, optimizer: torch.optim.Optimizer) -> None:
        """Sets the learning rate for this batch from the env steps done: a Python float (no device
        work), and a function of the env-step count alone, so a resumed run continues it exactly."""
        loop = find_env_loop(dqn.trainer)
        if loop is None or not loop.total_timesteps:
            return
        done = min(loop.env_steps / loop.total_timesteps, 1.0)
        lr = dqn.hparams["lr"] + (dqn.hparams["lr_end"] - dqn.hparams["lr"]) * done
        for group in optimizer.param_groups:
            group["lr"] = lr

    @staticmethod
    def first_non_finite(losses: torch.Tensor, gradient_step: int) -> NonFiniteLoss | None:
        """The batch's first NaN or infinite loss among `losses` (the last of which was update
        `gradient_step`), if any: one host sync per batch.

        The env loop raises it at the end of the batch, on every DDP rank, before any checkpoint
        could save the spoiled weights: the checkpoints on disk predate the bad update.
        """
        finite = torch.isfinite(losses)
        if bool(finite.all()):
            return None
        first = int((~finite).nonzero()[0, 0])
        return NonFiniteLoss(losses[first].item(), gradient_step - len(losses) + first + 1)

    @staticmethod
    def updates_before_target_changes(dqn: DQN, step: int) -> int:
        """Gradient steps from `step` until the bootstrap network next changes."""
        if dqn.target_network is None:
            return 1  # the online network bootstraps itself, and it changes with every update
        return dqn.target_update_interval - step % dqn.target_update_interval

    def target_is_online(self, dqn: DQN) -> bool:
        """Whether the target network holds the online network's weights at every target pass: a
        hard copy after every update (DrQ(eps)'s recipe), of our own networks without noise (a
        user's network may keep buffers, such as batch-norm statistics, that a copy leaves behind)."""
        own = isinstance(dqn.hparams.get("network"), str)
        return dqn.target_update_interval == 1 and self.tau == 1.0 and not dqn.noisy and own

    @torch.no_grad()
    def copy_target(self, dqn: DQN) -> None:
        """Copies the online network's weights into the target network (blends them in if tau < 1)."""
        if dqn.target_network is None:
            return
        copy_parameters(list(dqn.target_network.parameters()), list(dqn.q_network.parameters()), self.tau)

    def optimizer(self, dqn: DQN) -> torch.optim.Optimizer:
        """The optimizer the hyperparameters name, over the online network's parameters.

        Adam's fused kernel (CPU and CUDA) updates all parameters in one call: about a third of
        the per-update time of the default per-tensor loop for networks this small. Not with a
        gradient scaler (16-mixed) and clipping: the fused step unscales inside the kernel, after
        the clip would have to see unscaled gradients (bf16-mixed has no scaler: fused, see above).
        """
        scaler = getattr(dqn.trainer.precision_plugin, "scaler", None) if dqn._trainer is not None else None
        fused = dqn.device.type in ("cpu", "cuda") and not (scaler is not None and self.max_grad_norm is not None)
        return build_optimizer(
            dqn.q_network.parameters(),
            dqn.hparams.get("optimizer", "adam"),
            dqn.hparams["lr"],
            dqn.hparams.get("optimizer_options"),
            fused=fused,
        )
