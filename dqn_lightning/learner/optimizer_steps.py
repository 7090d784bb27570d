"""The optimizer side of `DQN`: one gradient step, clipping under every precision, the learning-rate
schedule, the target network's copies, and the optimizer itself."""

from __future__ import annotations

import torch
from pytorch_lightning.core.optimizer import LightningOptimizer
from pytorch_lightning.plugins.precision import MixedPrecision

from dqn_lightning.acting.env_loop import find_env_loop
from dqn_lightning.acting.interface import NonFiniteLoss
from dqn_lightning.learner.optimizers import build_optimizer
from dqn_lightning.learner.policy import QPolicy
from dqn_lightning.private_api import copy_parameters, direct_update


class OptimizerSteps(QPolicy):
    """Gradient steps and target copies for the subclass (`DQN`), which builds the networks and sets
    the attributes below."""

    target_network: torch.nn.Module | None
    target_update_interval: int
    double_q: bool
    tau: float
    max_grad_norm: float | None
    gradient_step: int

    def _follow_lr_schedule(self, optimizer: torch.optim.Optimizer) -> None:
        """Sets the learning rate for this batch from the env steps done: a Python float (no device
        work), and a function of the env-step count alone, so a resumed run continues it exactly."""
        loop = find_env_loop(self.trainer)
        if loop is None or not loop.total_timesteps:
            return
        done = min(loop.env_steps / loop.total_timesteps, 1.0)
        lr = self.hparams["lr"] + (self.hparams["lr_end"] - self.hparams["lr"]) * done
        for group in optimizer.param_groups:
            group["lr"] = lr

    def _first_non_finite(self, losses: torch.Tensor) -> NonFiniteLoss | None:
        """The batch's first NaN or infinite loss, if any (one host sync per batch).

        The env loop raises it at the end of the batch, on every DDP rank, before any checkpoint
        could save the spoiled weights: the checkpoints on disk predate the bad update.
        """
        finite = torch.isfinite(losses)
        if bool(finite.all()):
            return None
        first = int((~finite).nonzero()[0, 0])
        return NonFiniteLoss(losses[first].item(), self.gradient_step - len(losses) + first + 1)

    def _update(self, optimizer: LightningOptimizer, loss: torch.Tensor, through_lightning: bool) -> None:
        """One gradient step: through Lightning's wrapper (hooks, precision, step count) or directly."""
        if through_lightning:
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()  # clips in on_before_optimizer_step
        else:
            direct_update(optimizer.optimizer, loss, self.max_grad_norm)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Lightning calls this inside optimizer.step(), after a gradient scaler (16-mixed) has
        # unscaled the gradients: clipping before step() would clip the scaled ones, cutting the
        # norm to max_grad_norm / scale
        if self.max_grad_norm is None:
            return
        if self._clips_itself(optimizer):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)  # what Lightning's clip calls
        else:
            self.clip_gradients(optimizer, gradient_clip_val=self.max_grad_norm, gradient_clip_algorithm="norm")

    def _clips_itself(self, optimizer: torch.optim.Optimizer) -> bool:
        """bf16-mixed with a fused optimizer: no scaler, so the gradients are true ones and a plain clip
        is right, but Lightning's mixed-precision plugin refuses to clip any fused optimizer."""
        plugin = self.trainer.precision_plugin
        fused = getattr(optimizer, "_step_supports_amp_scaling", False)
        return isinstance(plugin, MixedPrecision) and getattr(plugin, "scaler", None) is None and fused

    def _updates_before_target_changes(self, step: int) -> int:
        """Gradient steps from `step` until the bootstrap network next changes (Double DQN's online
        choice changes with every update: `DQN._learn` makes that pass per update)."""
        if self.target_network is None:
            return 1  # the online network bootstraps itself, and it changes with every update
        return self.target_update_interval - step % self.target_update_interval

    @torch.no_grad()
    def sync_target(self) -> None:
        """Copies the online network's weights into the target network (blends them in if tau < 1)."""
        if self.target_network is None:
            return
        copy_parameters(list(self.target_network.parameters()), list(self.q_network.parameters()), self.tau)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Adam's fused kernel (CPU and CUDA) updates all parameters in one call: about a third of
        # the per-update time of the default per-tensor loop for networks this small. Not with a
        # gradient scaler (16-mixed) and clipping: the fused step unscales inside the kernel, after
        # the clip would have to see unscaled gradients (bf16-mixed has no scaler: fused, see above)
        scaler = getattr(self.trainer.precision_plugin, "scaler", None) if self._trainer is not None else None
        fused = self.device.type in ("cpu", "cuda") and not (scaler is not None and self.max_grad_norm is not None)
        return build_optimizer(
            self.q_network.parameters(),
            self.hparams.get("optimizer", "adam"),
            self.hparams["lr"],
            self.hparams.get("optimizer_options"),
            fused=fused,
        )
