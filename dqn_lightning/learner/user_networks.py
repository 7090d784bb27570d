"""A Q-network of the user's own: any `nn.Module` mapping observations to Q-values.

It is named by import path and init arguments (LightningCLI's `class_path` / `init_args`), so a
checkpoint records how to rebuild it and `DQN.load_from_checkpoint` needs nothing else. A module
passed as an instance is used as is; its checkpoint then needs `network=` again to load.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.networks import NETWORKS, build_q_network

NetworkSpec = dict[str, Any]  # {"class_path": "pkg.module.Class", "init_args": {...} or None}


def network_spec(q_network: nn.Module | str | Mapping[str, Any]) -> NetworkSpec:
    """The `{class_path, init_args}` record of a user network; `init_args` None for an instance."""
    if isinstance(q_network, nn.Module):
        cls = type(q_network)
        return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": None}
    if isinstance(q_network, str):
        return {"class_path": q_network, "init_args": {}}
    if isinstance(q_network, Mapping) and isinstance(q_network.get("class_path"), str):
        init_args = q_network.get("init_args")
        return {"class_path": q_network["class_path"], "init_args": None if init_args is None else dict(init_args)}
    raise ConfigError(
        f"q_network must be an nn.Module, an import path 'pkg.module.Class' or {{'class_path': ..., 'init_args': "
        f"{{...}}}}, got {type(q_network).__name__}"
    )


def import_class(path: str, role: str = "q_network", base: type = nn.Module) -> type:
    """The class at `pkg.module.Class` (or `pkg.module:Class`), a subclass of `base`; the working directory
    is searched too. `role` names the setting in the one-line errors."""
    module_name, _, name = path.replace(":", ".").rpartition(".")
    if not module_name:
        raise ConfigError(f"{role} {path!r} is not an import path: write it as module.ClassName")
    # `python scripts/train.py` puts scripts/ on the path, not the working directory: search it first,
    # for this import only
    sys.path.insert(0, os.getcwd())
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"cannot import {module_name} for {role} {path}: {err}; install it or put it on PYTHONPATH"
        ) from None
    finally:
        sys.path.remove(os.getcwd())
    cls = getattr(module, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        kind = "nn.Module" if base is nn.Module else base.__name__
        raise ConfigError(f"{role} {path}: {module_name} has no {kind} class {name}")
    return cls


def build_user_network(spec: NetworkSpec, obs_shape: Sequence[int], n_actions: int) -> nn.Module:
    """Instantiates the spec's class and checks it maps `(batch, *obs_shape)` to `(batch, n_actions)`.

    The class gets `obs_shape=` and `n_actions=` when its constructor takes them (so one class
    fits every env), plus `init_args`.
    """
    if spec["init_args"] is None:
        raise ConfigError(
            f"this checkpoint's Q-network was passed as an instance of {spec['class_path']}, which it cannot rebuild: "
            f"pass network={spec['class_path'].rpartition('.')[2]}(...) to load_from_checkpoint"
        )
    cls = import_class(spec["class_path"])
    args = dict(spec["init_args"])
    accepted = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    for key, value in (("obs_shape", tuple(obs_shape)), ("n_actions", n_actions)):
        if key in accepted or takes_any:
            args.setdefault(key, value)
    try:
        network = cls(**args)
    except TypeError as err:
        raise ConfigError(f"cannot build q_network {spec['class_path']}({_shown(args)}): {err}") from None
    check_q_values(network, obs_shape, n_actions, spec["class_path"])
    return network


def check_q_values(network: nn.Module, obs_shape: Sequence[int], n_actions: int, name: str) -> None:
    """One-line `ConfigError` unless two zero observations give Q-values `(2, n_actions)`."""
    with torch.no_grad():
        try:
            out = network(torch.zeros(2, *obs_shape))
        except Exception as err:  # any failure of the forward: one line
            raise ConfigError(f"q_network {name} fails on observations of shape {tuple(obs_shape)}: {err}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, n_actions):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"q_network {name} maps observations (2, {', '.join(map(str, obs_shape))}) to {shape}; it must give "
            f"Q-values (batch, n_actions) = (2, {n_actions})"
        )


def _shown(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in args.items())


def choose_q_network(
    network: str | nn.Module | Mapping[str, Any],
    obs_shape: Sequence[int],
    n_actions: int,
    hidden_sizes: Sequence[int],
    dueling: bool,
    atoms: int = 1,
    noisy: bool = False,
) -> tuple[nn.Module, str | NetworkSpec]:
    """The online Q-network `network` names, and what the checkpoint records to rebuild it.

    `network` is one of our names (`NETWORKS`: the record is the name), or the user's own: an
    `nn.Module`, its import path `pkg.module.Class` or `{"class_path": ..., "init_args": {...}}`
    (the record is that spec).
    """
    if isinstance(network, str) and network in NETWORKS:
        return build_q_network(obs_shape, n_actions, hidden_sizes, dueling, network, atoms, noisy), network  # type: ignore[arg-type]
    if isinstance(network, str) and "." not in network.replace(":", "."):
        raise ConfigError(
            f"unknown network {network!r}; choose one of {', '.join(NETWORKS)}, or pass your own nn.Module "
            "or its import path pkg.module.Class"
        )
    if dueling or noisy or atoms > 1:
        raise ConfigError(
            "dueling, noisy and the distributional heads shape our own Q-networks: leave them unset "
            "with your own network (build such a head into your module instead)"
        )
    spec = network_spec(network)
    if isinstance(network, nn.Module):
        check_q_values(network, obs_shape, n_actions, spec["class_path"])
        built = network
    else:
        built = build_user_network(spec, obs_shape, n_actions)
    built.register_forward_pre_hook(_observations_in_weights_dtype)
    return built, spec


def _observations_in_weights_dtype(network: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Float observations in the dtype of the network's weights (our networks cast for themselves).

    Under `bf16-true` or `64-true` Lightning casts the weights, but a replay batch is drawn after
    the precision plugin converted the (deferred) batch, and acting passes the env's float32
    observations: a user's network would get float32 against bfloat16 or float64 weights.
    """
    weight = next(network.parameters(), None)
    obs = args[0] if args else None
    if weight is None or not isinstance(obs, torch.Tensor) or not obs.is_floating_point() or obs.dtype == weight.dtype:
        return None
    return (obs.to(weight.dtype), *args[1:])


def network_or_alias(
    network: str | nn.Module | Mapping[str, Any], q_network: nn.Module | str | Mapping[str, Any] | None
) -> str | nn.Module | Mapping[str, Any]:
    """`network`, or the deprecated `q_network=` alias when that is what was given (pre-1.0)."""
    if q_network is None:
        return network
    warnings.warn(
        "DQN(q_network=...) is deprecated: pass your module or its import path as network=",
        DeprecationWarning,
        stacklevel=3,
    )
    if not (isinstance(network, str) and network == "auto"):
        raise ConfigError("give network= or q_network= (its deprecated alias), not both")
    return q_network
