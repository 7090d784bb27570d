"""The machine a number came from: CPU model and the vector instructions torch uses on it.

Float results, and so RL trajectories and speeds, differ between CPUs of one model name
(an AMD EPYC with AVX2 and one with AVX-512), so every table and benchmark records both.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """`"<model name>, <torch's CPU capability>"`, e.g. `"AMD EPYC, AVX512"` (from /proc/cpuinfo where there is one)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    except OSError:
        model = platform.processor() or "unknown"
    return f"{model}, {torch.backends.cpu.get_cpu_capability()}"
