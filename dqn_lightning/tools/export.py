"""The greedy policy as a standalone file (ONNX or TorchScript) that runs without this package.

The file takes observations exactly as the env (with our wrappers) gives them, `(batch,
*obs_shape)` in the env's dtype: uint8 frames are scaled inside, as in training. It returns the
greedy action `(batch,)` int64 and the Q-values `(batch, n_actions)` float32. A policy trained
with action masks takes a second input, `action_mask` `(batch, n_actions)` bool, and picks the
best legal action. `check_export` plays the env and compares the file's actions with PyTorch's.
A recurrent policy's file takes and returns its state too (see `recurrent_export`).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from dqn_lightning.acting.action_masks import infos_mask
from dqn_lightning.acting.envs import env_spaces, make_vector_env
from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.module import DQN
from dqn_lightning.learner.recurrent import RecurrentDQN
from dqn_lightning.learner.td import legal_q
from dqn_lightning.tools.recurrent_export import (
    INPUTS,
    OUTPUTS,
    RecurrentGreedyPolicy,
    check_recurrent_export,
    example_inputs,
)

ExportFormat = Literal["onnx", "torchscript"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript")
TIE = 1e-5  # Q-values this close are a tie: either action is greedy, and runtimes may pick either


class GreedyPolicy(nn.Module):
    """A frozen float32 copy of the online network and value head (noisy layers at their mean),
    returning (greedy actions, Q-values)."""

    def __init__(self, model: DQN) -> None:
        super().__init__()
        self.q_network = copy.deepcopy(model.q_network).float().cpu().eval().requires_grad_(False)
        self.value_head = copy.deepcopy(model.value_head).float().cpu().eval()

    def forward(self, obs: torch.Tensor, action_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        q_values = self.value_head.q_values(self.q_network(obs))
        return legal_q(q_values, action_mask).argmax(dim=1), q_values


@dataclass(frozen=True)
class PolicyInfo:
    """What a user of the exported file needs to feed it (also stored inside the file)."""

    env_id: str
    obs_shape: tuple[int, ...]
    obs_dtype: str
    n_actions: int
    action_masks: bool = False  # the file takes `action_mask` as its second input
    state_size: int = 0  # a recurrent policy: its state's floats (inputs and outputs as in recurrent_export)


def policy_info(model: DQN) -> PolicyInfo:
    env_id = model.hparams.get("env_id")
    if env_id is None:
        raise ConfigError("the checkpoint stores no env id, so the observation layout is unknown: train with --env")
    spaces = env_spaces(env_id)
    masked = bool(model.hparams.get("action_masks", False))
    state_size = model.state_size if isinstance(model, RecurrentDQN) else 0
    return PolicyInfo(env_id, spaces.obs_shape, str(spaces.obs_dtype), spaces.n_actions, masked, state_size)


def export_policy(model: DQN, path: str | Path, fmt: ExportFormat) -> PolicyInfo:
    """Writes the greedy policy to `path`; the file appears whole or not at all."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    info = policy_info(model)
    policy: nn.Module = GreedyPolicy(model)
    example: tuple[torch.Tensor, ...] = (torch.zeros(2, *info.obs_shape, dtype=getattr(torch, info.obs_dtype)),)
    if info.action_masks:
        example += (torch.ones(2, info.n_actions, dtype=torch.bool),)
    if isinstance(model, RecurrentDQN):
        policy, example = RecurrentGreedyPolicy(model), example_inputs(model, info.obs_shape, info.obs_dtype)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    try:
        if fmt == "onnx":
            _write_onnx(policy, example, Path(partial), info)
        else:
            traced = torch.jit.trace(policy, example)
            torch.jit.save(traced, partial, _extra_files={"policy.json": json.dumps(asdict(info))})
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)
    return info


def _write_onnx(policy: nn.Module, example: tuple[torch.Tensor, ...], path: Path, info: PolicyInfo) -> None:
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install 'dqn-lightning[export]'") from None
    # the TorchScript-based exporter: no onnxscript needed, and these networks need nothing newer
    inputs = list(INPUTS) if info.state_size else ["obs", "action_mask"][: len(example)]
    outputs = list(OUTPUTS) if info.state_size else ["action", "q_values"]
    torch.onnx.export(
        policy,
        example,
        str(path),
        input_names=inputs,
        output_names=outputs,
        dynamic_axes={name: {0: "batch"} for name in [*inputs, *outputs]},
        dynamo=False,
    )
    graph = onnx.load(str(path))
    for key, value in asdict(info).items():
        graph.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(graph, str(path))


def load_exported(path: str | Path) -> Any:
    """A callable `(obs, mask=None) -> (actions, q_values)` on NumPy arrays, from an .onnx or
    TorchScript file (`mask`: the legal actions, for a policy exported with action masks); for a
    recurrent policy `(obs, prev_action, prev_reward, state) -> (actions, q_values, state_out)`."""
    if str(path).endswith(".onnx"):
        try:
            import onnxruntime
        except ImportError:
            raise ConfigError("running ONNX needs onnxruntime: pip install 'dqn-lightning[export]'") from None
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        if [i.name for i in session.get_inputs()] == list(INPUTS):
            return lambda *inputs: tuple(session.run(None, dict(zip(INPUTS, inputs, strict=True))))
        return lambda obs, mask=None: tuple(
            session.run(None, {"obs": obs} | ({"action_mask": mask} if mask is not None else {}))
        )
    extra = {"policy.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    if json.loads(extra["policy.json"] or "{}").get("state_size"):
        return lambda *inputs: tuple(t.numpy() for t in module(*(torch.from_numpy(np.asarray(x)) for x in inputs)))
    return lambda obs, mask=None: tuple(
        t.numpy() for t in module(torch.from_numpy(obs), *([torch.from_numpy(mask)] if mask is not None else []))
    )


@dataclass
class ExportCheck:
    """How the exported file's actions compared with PyTorch's on env observations."""

    observations: int
    same_action: int
    ties: int  # different actions whose Q-values tie (within TIE): both greedy
    max_abs_q_difference: float


def check_export(model: DQN, path: str | Path, observations: int = 1000, seed: int = 0) -> ExportCheck:
    """Compares the file with the module on `observations` env observations from a half-random policy.

    Raises `ConfigError` when an action differs where PyTorch's Q-values do not tie.
    """
    run = load_exported(path)
    model.eval()  # noisy layers at their mean weights, as exported
    if isinstance(model, RecurrentDQN):
        seen, same, ties, worst = check_recurrent_export(run, model, observations, seed, TIE)
        if same + ties < seen or worst > 1e-3:
            raise ConfigError(
                f"the exported recurrent policy in {path} picks other actions than PyTorch on {seen - same - ties} "
                f"of {seen} observations (Q-values or states differ by up to {worst:.3g}); it is not a faithful export"
            )
        return ExportCheck(seen, same, ties, worst)
    masked = bool(model.hparams.get("action_masks", False))
    env = make_vector_env(model.hparams["env_id"], num_envs=8)
    rng = np.random.default_rng(seed)
    same = ties = seen = 0
    worst = 0.0
    try:
        obs, infos = env.reset(seed=[seed * 1000 + i for i in range(8)])
        mask = infos_mask(infos, None) if masked else None
        while seen < observations:
            with torch.no_grad():
                q_torch = model(torch.as_tensor(obs)).float().numpy()
            actions, q_file = run(np.ascontiguousarray(obs), mask)
            legal = legal_q(torch.from_numpy(q_torch), torch.from_numpy(mask) if mask is not None else None).numpy()
            top = legal.max(axis=1)
            picked = legal[np.arange(len(obs)), actions]
            same += int((actions == legal.argmax(axis=1)).sum())
            ties += int(((actions != legal.argmax(axis=1)) & (top - picked <= TIE)).sum())
            worst = max(worst, float(np.abs(q_file - q_torch).max()))
            seen += len(obs)
            explore = {"mask": mask} if mask is not None else {}
            obs, _, terminated, truncated, infos = env.step(model.act(obs, epsilon=0.5, rng=rng, **explore))
            mask = infos_mask(infos, mask) if mask is not None else None
            if (ended := terminated | truncated).any():
                obs, infos = env.reset(options={"reset_mask": ended})
                mask = infos_mask(infos, mask) if mask is not None else None
    finally:
        env.close()
    result = ExportCheck(seen, same, ties, worst)
    if same + ties < seen:
        raise ConfigError(
            f"the exported policy in {path} picks other actions than PyTorch on {seen - same - ties} of {seen} "
            f"observations (Q-values differ by up to {worst:.3g}); it is not a faithful export"
        )
    return result
