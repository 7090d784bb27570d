"""A fused Adam step as one kernel call, without `torch.optim`'s per-call Python layers.

For a network as small as CartPole's MLP, `Adam.step()` spends about twice as long in its Python
wrappers (profiling hooks, dynamo guards, regrouping tensors by device and dtype, gathering
state) as in the fused kernel itself. `DQN` takes many updates per training step, so inside a
burst it calls the kernel directly on the optimizer's own state, which leaves the optimizer,
its state dict and checkpoints exactly as `step()` would (checked bit for bit in the tests).
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks


def fused_adam_step(optimizer: torch.optim.Optimizer) -> bool:
    """Does `optimizer.step()` as one `torch._fused_adam_` call, if it is a plain fused Adam.

    Returns False, having done nothing, when anything differs from that case (another
    optimizer, several parameter groups, amsgrad, step hooks, no state yet, a parameter without
    a gradient): the caller then calls `optimizer.step()`.
    """
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return False
    if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:
        return False
    if _global_optimizer_pre_hooks or _global_optimizer_post_hooks:
        return False
    group = optimizer.param_groups[0]
    if not group["fused"] or group["amsgrad"] or group["maximize"] or group["decoupled_weight_decay"]:
        return False
    if isinstance(group["lr"], torch.Tensor) or getattr(optimizer, "grad_scale", None) is not None:
        return False
    params: list[torch.Tensor] = group["params"]
    states = [optimizer.state.get(p) for p in params]
    if any(not state for state in states) or any(p.grad is None for p in params):
        return False  # the first step creates the state: leave that to Adam
    first = params[0]
    if any(p.device != first.device or p.dtype != first.dtype for p in params):
        return False
    steps = [state["step"] for state in states]  # type: ignore[index]
    beta1, beta2 = group["betas"]
    torch._foreach_add_(steps, 1)
    torch._fused_adam_(
        params,
        [p.grad for p in params],  # type: ignore[misc]
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
