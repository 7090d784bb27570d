"""scripts/gpu_check.py in its CPU mode, so that it runs whenever a GPU is at hand."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.helpers import load_script


def test_the_gpu_check_runs_its_cpu_checks_and_says_which_it_skipped(tmp_path: Path) -> None:
    gpu_check = load_script("gpu_check")
    assert gpu_check.main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    checks = {check["name"]: check for check in report["checks"]}
    assert len(checks) == 8 and (tmp_path / "report.md").read_text().count("\n| ") == 9  # header + 8 rows
    skipped = {name for name, check in checks.items() if check["status"] == "skipped"}
    if not torch.cuda.is_available():
        assert skipped == {"sync audit"} and "needs CUDA" in checks["sync audit"]["summary"]
        assert checks["precisions x networks, clipped"]["numbers"]["16-mixed CartPole-v1"].startswith("skipped")
    assert all(check["status"] == "pass" for name, check in checks.items() if name not in skipped)
    resume = checks["determinism and resume"]["numbers"]
    assert resume["run"] == resume["rerun"] == resume["resumed"]
    assert checks["16-mixed clips unscaled gradients"]["numbers"]["norms"]
