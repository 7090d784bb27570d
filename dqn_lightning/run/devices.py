"""Where a run trains: the accelerator, devices and strategy, checked before anything is built.

One device unless `--devices` or `--strategy ddp` asks for more: Lightning's own default
(`devices="auto"`) would start DDP over every GPU of a multi-GPU host and split the env-step
budget across ranks, silently changing a preset's recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from pytorch_lightning.strategies import DDPStrategy

from dqn_lightning.errors import ConfigError

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
STRATEGIES = ("auto", "ddp")
# why each other strategy Lightning knows cannot run this loop
REFUSED = {
    "ddp_spawn": "the parent process's EnvLoop would never step and its summary would be wrong",
    "ddp_fork": "the parent process's EnvLoop would never step and its summary would be wrong",
    "ddp_notebook": "the parent process's EnvLoop would never step and its summary would be wrong",
    "fsdp": "it shards the Q-network, which each rank's EnvLoop needs whole to act",
    "deepspeed": "it shards the Q-network, which each rank's EnvLoop needs whole to act",
}

Devices = int | list[int] | str


@dataclass(frozen=True)
class Placement:
    """The Trainer's accelerator, devices and strategy, and a note for the `Settings:` line."""

    accelerator: str
    devices: Devices
    strategy: str
    note: str = ""

    def processes(self, num_nodes: int = 1) -> int:
        """How many training processes (DDP ranks) the run starts over all nodes."""
        devices = self.devices
        if isinstance(devices, list):
            per_node = len(devices)
        elif isinstance(devices, str):  # "auto", only with --strategy ddp: every device of its kind
            per_node = torch.cuda.device_count() if self.accelerator in ("gpu", "cuda", "auto") else 1
        else:
            per_node = devices if devices > 0 else max(torch.cuda.device_count(), 1)
        return max(per_node, 1) * num_nodes

    def trainer_strategy(self, num_nodes: int = 1) -> str | DDPStrategy:
        """The Trainer's `strategy`: DDP without the per-forward buffer broadcast when several processes
        run. Nothing needs it: the noise is redrawn before every use, each rank its own, the C51
        support never changes, and the log sums are each rank's own; each broadcast is a collective
        every rank waits on, once per batch."""
        if self.strategy == "ddp" or self.processes(num_nodes) > 1:
            return DDPStrategy(broadcast_buffers=False)
        return self.strategy


def parse_devices(text: str) -> Devices:
    """`--devices`: `auto`, a count (`2`, `-1` for all), or GPU indices (`[0, 1]`, `0,1`)."""
    text = text.strip()
    if text == "auto":
        return text
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"\[?\s*\d+(\s*,\s*\d+)*\s*,?\s*\]?", text):
        return [int(index) for index in re.findall(r"\d+", text)]
    raise ConfigError(f"--devices {text!r}: give a count (2), GPU indices like '[0, 1]', or auto")


def placement(accelerator: str, devices: str, strategy: str) -> Placement:
    """Checks the three against this machine; one-line `ConfigError`s name the fix."""
    if accelerator not in ACCELERATORS:
        raise ConfigError(f"--accelerator {accelerator}: choose one of {', '.join(ACCELERATORS)}")
    if strategy in REFUSED:
        raise ConfigError(f"--strategy {strategy} is not supported: {REFUSED[strategy]}; use --strategy ddp")
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy}: choose one of {', '.join(STRATEGIES)}")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"--accelerator {accelerator}: torch sees no CUDA GPU here (torch {torch.__version__}); use "
            "--accelerator cpu, or install a CUDA build of torch on a machine with an NVIDIA GPU"
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--accelerator mps: this machine has no Apple GPU (MPS); use --accelerator cpu")
    chosen = parse_devices(devices)
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if isinstance(chosen, list) and on_cpu:
        raise ConfigError(f"--devices {devices} lists GPU indices, but the run is on the CPU: give a count")
    if chosen != "auto":
        return Placement(accelerator, chosen, strategy)
    if strategy == "ddp":
        return Placement(accelerator, "auto", strategy, "DDP over every device (--devices N for fewer)")
    many_gpus = not on_cpu and accelerator != "mps" and torch.cuda.device_count() > 1
    note = f"one of {torch.cuda.device_count()} GPUs (--devices N or --strategy ddp for more)" if many_gpus else ""
    return Placement(accelerator, 1, strategy, note)
