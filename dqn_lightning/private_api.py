"""Every use of a private torch or Lightning API, each with a public fallback: speed tricks and tracker ids.

For a network as small as CartPole's MLP, `Adam.step()` spends about twice as long in its Python
wrappers (profiling hooks, dynamo guards, regrouping tensors by device and dtype, gathering
state) as in the fused kernel itself. `DQN` takes many updates per training step, so inside a
burst it calls the kernel directly on the optimizer's own state, which leaves the optimizer,
its state dict and checkpoints exactly as `step()` would (checked bit for bit in the tests).

What the installed torch offers is detected once, at import (`FUSED_ADAM_KERNEL`); a torch
without it (older, or newer with the private API changed) takes `optimizer.step()`, the
public path, and so does every case the direct call does not reproduce.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor


def _private_torch_parts() -> tuple[Any, tuple[dict, dict]] | None:
    """(torch's fused Adam kernel, the global optimizer hook dicts), or None if this torch lacks them."""
    try:
        from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks
    except ImportError:
        return None
    kernel = getattr(torch, "_fused_adam_", None)
    return (kernel, (_global_optimizer_pre_hooks, _global_optimizer_post_hooks)) if callable(kernel) else None


FUSED_ADAM_KERNEL = _private_torch_parts()


def fused_adam_step(optimizer: torch.optim.Optimizer) -> bool:
    """Does `optimizer.step()` as one `torch._fused_adam_` call, if it is a plain fused Adam.

    Returns False, having done nothing, when anything differs from that case (another
    optimizer, several parameter groups, amsgrad, step hooks, no state yet, a parameter without
    a gradient, a torch without the kernel): the caller then calls `optimizer.step()`.
    """
    if FUSED_ADAM_KERNEL is None or type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return False
    kernel, global_hooks = FUSED_ADAM_KERNEL
    if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks or any(global_hooks):
        return False
    group = optimizer.param_groups[0]
    # .get: keys a torch release may not have (decoupled_weight_decay is recent)
    if not group.get("fused") or group.get("amsgrad") or group.get("maximize") or group.get("decoupled_weight_decay"):
        return False
    if isinstance(group["lr"], Tensor) or getattr(optimizer, "grad_scale", None) is not None:
        return False
    params: list[Tensor] = group["params"]
    states = [optimizer.state.get(p) for p in params]
    if any(not state for state in states) or any(p.grad is None for p in params):
        return False  # the first step creates the state: leave that to Adam
    first = params[0]
    if any(p.device != first.device or p.dtype != first.dtype for p in params):
        return False
    steps = [state["step"] for state in states]  # type: ignore[index]
    beta1, beta2 = group["betas"]
    torch._foreach_add_(steps, 1)
    kernel(
        params,
        [p.grad for p in params],
        [state["exp_avg"] for state in states],  # type: ignore[index]
        [state["exp_avg_sq"] for state in states],  # type: ignore[index]
        [],
        steps,
        amsgrad=False,
        lr=group["lr"],
        beta1=beta1,
        beta2=beta2,
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        maximize=False,
        grad_scale=None,
        found_inf=None,
    )
    return True


def direct_update(optimizer: torch.optim.Optimizer, loss: Tensor, max_grad_norm: float | None) -> None:
    """`zero_grad(set_to_none=True)`, backward, clip, step, with less Python per call than Lightning's wrapper."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for param in params:
        param.grad = None
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    if not fused_adam_step(optimizer):
        optimizer.step()


def writes_logs_now(trainer: pl.Trainer) -> bool:
    """Whether Lightning writes step metrics to the loggers after this training batch.

    Reads Lightning's own decision where this Lightning exposes it (a private attribute, the
    same across 2.x); otherwise works it out from the public `log_every_n_steps`.
    """
    connector = getattr(trainer, "_logger_connector", None)
    decision = getattr(connector, "should_update_logs", None)
    if isinstance(decision, bool):
        return decision
    every = max(int(getattr(trainer, "log_every_n_steps", 50)), 1)
    return (trainer.global_step + 1) % every == 0 or trainer.should_stop


def validates_after_this_batch(trainer: pl.Trainer) -> bool | None:
    """Whether Lightning runs validation once this training batch's end hooks are done.

    Asks Lightning's own decision (a private method of the training epoch loop, in 2.5 and
    2.6), which is settled by then: the batch counters, the stop flag and the validation limits
    do not change between `on_train_batch_end` and the check. None where this Lightning lacks it.
    """
    fit_loop = getattr(trainer, "fit_loop", None)
    epoch_loop = getattr(fit_loop, "epoch_loop", None)
    decide = getattr(epoch_loop, "_should_check_val_fx", None)
    fetcher = getattr(fit_loop, "_data_fetcher", None)
    if decide is None or fetcher is None:
        return None
    try:
        return bool(decide(fetcher)) and not getattr(epoch_loop, "_skip_next_val", False)
    except Exception:  # a changed signature or state: the caller does what it did without the answer
        return None


def copy_parameters(target: list[Tensor], online: list[Tensor], tau: float) -> None:
    """`target <- online` (tau 1) or `target <- tau * online + (1 - tau) * target`, in place.

    torch's foreach kernels do all tensors in one call, about half the time of a per-tensor loop
    (4 vs 7 us for the CartPole MLP); the loop is the public fallback and gives the same bits.
    """
    if tau == 1.0:
        foreach = getattr(torch, "_foreach_copy_", None)
        if foreach is not None:
            foreach(target, online)
        else:
            for t, o in zip(target, online, strict=True):
                t.copy_(o)
        return
    foreach = getattr(torch, "_foreach_lerp_", None)
    if foreach is not None:
        foreach(target, online, tau)
    else:
        for t, o in zip(target, online, strict=True):
            t.lerp_(o, tau)


def mlflow_tracking_uri(logger: Any) -> str | None:
    """The store an `MLFlowLogger` writes to (Lightning keeps it private; None if that changes)."""
    uri = getattr(logger, "_tracking_uri", None)
    return uri if isinstance(uri, str) else None


def started_experiment(logger: Any) -> Any:
    """A logger's experiment object if it was started, else None, without starting it (Lightning's
    `experiment` property would start one)."""
    return getattr(logger, "_experiment", None)
