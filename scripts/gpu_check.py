"""Checks a GPU in minutes: speed, the fused step, every precision, syncs, determinism, resume, refusals.

    python scripts/gpu_check.py                      # on a GPU machine: every check, about 5 minutes
    python scripts/gpu_check.py --out docs/gpu_check # where report.json and report.md go

Each check prints one row as it finishes and ends up in `report.json` (numbers) and `report.md`
(the table). Without CUDA the script runs the checks that mean something on a CPU and marks the
GPU-only ones `skipped` with the reason, so the same command runs on every machine (the test
suite runs it in `--quick` mode so it cannot rot). It installs nothing: on a machine without
network, bring the wheels along (`pip download -d wheels torch==<cuda build> -e .[minatar]` where
you have network, `pip install --no-index -f wheels ...` there). Exit status 1 if a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytorch_lightning as pl
import torch

from dqn_lightning import DQN, EnvLoop, ReplayBuffer, replay_dataloader
from dqn_lightning.learner.checkpoint_file import state_hash
from dqn_lightning.private_api import fused_adam_step
from dqn_lightning.replay.batch import ReplayBatch
from dqn_lightning.run import build, train
from dqn_lightning.run.build import quiet_lightning_messages
from dqn_lightning.run.config import parse_config
from dqn_lightning.tools.machine import cpu_name

ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true")


@dataclass
class Result:
    """One check's row: `status` is pass, fail or skipped; `numbers` what it measured."""

    name: str
    status: str
    summary: str
    seconds: float = 0.0
    numbers: dict[str, Any] = field(default_factory=dict)


class Checks:
    """The checks, sized by `quick` (the test suite's CPU run) or full (a GPU at hand)."""

    def __init__(self, out: Path, quick: bool) -> None:
        self.out, self.quick = out, quick
        self.cuda = torch.cuda.is_available()
        self.accelerator = "gpu" if self.cuda else "cpu"
        self.work = out / "runs"

    def flags(self, *extra: str) -> list[str]:
        return ["--accelerator", self.accelerator, "--quiet", "--logdir", str(self.work), *extra]

    # ---- speed ------------------------------------------------------------------------------------

    def throughput(self) -> Result:
        """CartPole at the published loop (1 env step, 1 update), on the GPU and on the CPU."""
        steps = 3_000 if self.quick else 20_000
        numbers: dict[str, Any] = {"env_steps": steps}
        for accelerator in ("gpu", "cpu") if self.cuda else ("cpu",):
            config = parse_config(["--accelerator", accelerator, "--quiet", "--logdir", str(self.work),
                                   "--total-timesteps", str(steps), "--train-freq", "1", "--gradient-steps", "1",
                                   "--eval-episodes", "0", "--save-buffer", "never"])  # fmt: skip
            run = build(config)
            summary = run.fit()
            optimizer = run.model.optimizers().optimizer  # type: ignore[union-attr]
            numbers[accelerator] = {
                "env_steps_per_s": summary["sps"],
                "fused_adam": bool(optimizer.param_groups[0].get("fused")),
                "lean_updates": bool(run.model.update_rounds.lean),
            }
        text = ", ".join(f"{a} {numbers[a]['env_steps_per_s']:.0f} env steps/s" for a in ("gpu", "cpu") if a in numbers)
        ok = all(numbers[a]["fused_adam"] and numbers[a]["lean_updates"] for a in ("gpu", "cpu") if a in numbers)
        return Result("CartPole throughput", "pass" if ok else "fail", text + ("" if ok else "; fast path off"),
                      numbers=numbers)  # fmt: skip

    # ---- the fused step -------------------------------------------------------------------------

    def fused_step(self) -> Result:
        """`torch._fused_adam_` called directly equals `Adam(fused=True).step()`, bit for bit, on this device."""
        device = torch.device("cuda" if self.cuda else "cpu")
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2)).to(device)
        twin = [p.detach().clone().requires_grad_() for p in net.parameters()]
        direct = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
        stepped = torch.optim.Adam(twin, lr=1e-3, fused=True)
        used_kernel = False
        for _ in range(20):
            grads = [torch.randn_like(p) for p in twin]
            for p, q, g in zip(net.parameters(), twin, grads, strict=True):
                p.grad, q.grad = g.clone(), g.clone()
            if not fused_adam_step(direct):
                direct.step()  # the first step makes the state: Adam's own
            else:
                used_kernel = True
            stepped.step()
        same = all(torch.equal(p, q) for p, q in zip(net.parameters(), twin, strict=True))
        status = "pass" if same and used_kernel else "fail"
        return Result(f"fused Adam step on {device.type}", status,
                      f"equal to Adam.step: {same}; kernel used: {used_kernel}")  # fmt: skip

    # ---- precisions -------------------------------------------------------------------------------

    def precisions(self) -> Result:
        """5 precisions x {MLP, MinAtar CNN}, each with clipping: trains, weights finite, in the right dtype."""
        rows: dict[str, str] = {}
        for precision in PRECISIONS:
            for env in ("CartPole-v1", "MinAtar/Breakout-v1"):
                key = f"{precision} {env}"
                if precision == "16-mixed" and not self.cuda:
                    rows[key] = "skipped: Lightning runs 16-mixed as bf16-mixed on a CPU"
                    continue
                flags = self.flags("--env", env, "--precision", precision, "--total-timesteps", "300",
                                   "--learning-starts", "100", "--batch-size", "16", "--eval-episodes", "1",
                                   "--eval-interval", "300", "--max-grad-norm", "10")  # fmt: skip
                summary = train(parse_config(flags))
                model = DQN.load_from_checkpoint(summary["last_checkpoint"], map_location="cpu")
                finite = all(bool(torch.isfinite(p).all()) for p in model.q_network.parameters())
                rows[key] = "pass" if finite and summary["gradient_steps"] > 0 else "fail: non-finite weights"
        failed = [k for k, v in rows.items() if v.startswith("fail")]
        ran = sum(v == "pass" for v in rows.values())
        text = f"{ran} trained" + (f"; failed: {', '.join(failed)}" if failed else "")
        return Result("precisions x networks, clipped", "fail" if failed else "pass", text, numbers=rows)

    def unscaled_norm(self) -> Result:
        """Under 16-mixed the optimizer steps with gradients of norm min(norm, max_grad_norm), unscaled."""
        from pytorch_lightning.plugins.precision import MixedPrecision

        pl.seed_everything(0, verbose=False)
        model = DQN.from_env("CartPole-v1", hidden_sizes=(16,), eval_episodes=0, max_grad_norm=1e-3)
        buffer = ReplayBuffer(2_000, (4,), seed=0)
        loop = EnvLoop("CartPole-v1", buffer, total_timesteps=140, learning_starts=100, train_freq=4, seed=0)
        norms: list[float] = []

        class RecordNorm(pl.Callback):
            def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
                inner = pl_module.optimizers().optimizer  # type: ignore[union-attr]
                step = inner.step

                def recording_step(*args: Any, **kwargs: Any) -> Any:
                    result = step(*args, **kwargs)
                    grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
                    norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
                    return result

                inner.step = recording_step  # type: ignore[method-assign]

        if self.cuda:
            extra: dict[str, Any] = {"accelerator": "gpu", "precision": "16-mixed"}
        else:  # Lightning turns 16-mixed into bf16-mixed on a CPU: the fp16 plugin with a CPU scaler
            scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
            extra = {"accelerator": "cpu", "plugins": [MixedPrecision("16-mixed", "cpu", scaler=scaler)]}
        trainer = pl.Trainer(devices=1, max_epochs=-1, logger=False, enable_progress_bar=False,
                             enable_checkpointing=False, enable_model_summary=False, limit_val_batches=0,
                             num_sanity_val_steps=0, callbacks=[loop, RecordNorm()], **extra)  # fmt: skip
        trainer.fit(model, replay_dataloader(buffer, 16))
        ok = bool(norms) and all(abs(n - 1e-3) < 1e-6 for n in norms)
        return Result("16-mixed clips unscaled gradients", "pass" if ok else "fail",
                      f"{len(norms)} updates, norms {min(norms):.3g}..{max(norms):.3g} (want 0.001)",
                      numbers={"norms": norms})  # fmt: skip

    # ---- syncs --------------------------------------------------------------------------------------

    def sync_audit(self) -> Result:
        """Host-device syncs per env step and per update (torch's sync debug mode), per algorithm."""
        if not self.cuda:
            return Result("sync audit", "skipped", "needs CUDA (torch.cuda.set_sync_debug_mode)")
        numbers: dict[str, Any] = {}
        for name, extra in (("default", []), ("prioritized", ["--prioritized"]), ("rainbow", ["--rainbow"])):
            numbers[name] = self._count_syncs(extra)
        text = "; ".join(f"{k}: {v['per_env_step']:.2f}/env step, {v['per_update']:.2f}/update"
                         for k, v in numbers.items())  # fmt: skip
        # the goal: at most 2 per env step, and on the lean path none per update beyond the finite check
        ok = all(v["per_env_step"] <= 2 for v in numbers.values())
        return Result("sync audit", "pass" if ok else "fail", text, numbers=numbers)

    def _count_syncs(self, extra: list[str]) -> dict[str, float]:
        config = parse_config(self.flags("--total-timesteps", "1500", "--learning-starts", "500",
                                         "--train-freq", "1", "--gradient-steps", "1", "--eval-episodes", "0",
                                         "--save-buffer", "never", *extra))  # fmt: skip
        run = build(config)
        phase = {"now": "other"}
        counts = {"env": 0, "update": 0, "other": 0}
        step, training_step = run.env_loop._step, run.model.training_step

        def in_phase(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                phase["now"] = name
                try:
                    return fn(*args, **kwargs)
                finally:
                    phase["now"] = "other"

            return wrapped

        run.env_loop._step = in_phase("env", step)  # type: ignore[method-assign]
        run.model.training_step = in_phase("update", training_step)  # type: ignore[method-assign]
        original = warnings.showwarning

        def count(message: Any, *args: Any, **kwargs: Any) -> None:
            if "synchroniz" in str(message):
                counts[phase["now"]] += 1
            else:
                original(message, *args, **kwargs)

        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = count
            torch.cuda.set_sync_debug_mode("warn")
            try:
                run.fit()
            finally:
                torch.cuda.set_sync_debug_mode(0)
        # warm-up steps (random actions) are not counted: only steps taken with the network
        acting = max(run.env_loop.env_steps - config.learning_starts, 1)
        updates = max(run.model.gradient_step, 1)
        return {"per_env_step": counts["env"] / acting, "per_update": counts["update"] / updates,
                "other_per_batch": counts["other"] / updates}  # fmt: skip

    # ---- determinism and resume --------------------------------------------------------------------

    def determinism(self) -> Result:
        """Two identical MinAtar Rainbow runs with --deterministic, and a resumed run, compared bit for bit."""
        steps = "1200" if self.quick else "4000"
        half = str(int(steps) // 2)
        base = ["--preset", "minatar-rainbow", "--env", "MinAtar/Breakout-v0", "--deterministic", "--seed", "7",
                "--total-timesteps", steps, "--learning-starts", "400", "--eval-episodes", "0"]  # fmt: skip
        first = train(parse_config(self.flags(*base, "--checkpoint-interval", half)))
        first_hash = state_hash(first["last_checkpoint"])
        second = state_hash(train(parse_config(self.flags(*base)))["last_checkpoint"])
        periodic = sorted(Path(first["last_checkpoint"]).parent.glob(f"periodic-envstep{half}*.ckpt"))
        if not periodic:
            return Result("determinism and resume", "fail", f"no periodic checkpoint at env step {half}")
        resumed = state_hash(train(parse_config(self.flags(*base, "--resume", str(periodic[0]))))["last_checkpoint"])
        same, resumes = first_hash == second, first_hash == resumed
        return Result("determinism and resume", "pass" if same and resumes else "fail",
                      f"two runs equal: {same}; resumed at {half} equals uninterrupted: {resumes}",
                      numbers={"run": first_hash, "rerun": second, "resumed": resumed})  # fmt: skip

    # ---- Breakout-sized data path ------------------------------------------------------------------

    def breakout_profile(self) -> Result:
        """Per update of the breakout preset's shapes (32 x 4 x 84 x 84 frames): sample, copy, update, in ms."""
        device = torch.device("cuda" if self.cuda else "cpu")
        capacity = 5_000 if self.quick else 50_000
        buffer = ReplayBuffer(capacity, (4, 84, 84), np.uint8, seed=0, store_frames=True)
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 255, size=(capacity + 8, 84, 84), dtype=np.uint8)
        for t in range(capacity):
            stack = frames[t : t + 5]
            buffer.add(stack[None, :4], [int(t % 4)], [0.0], stack[None, 1:], [False], [False])
        model = DQN(obs_shape=(4, 84, 84), n_actions=4, network="nature-cnn", eval_episodes=0).to(device)
        optimizer = torch.optim.Adam(model.q_network.parameters(), lr=1e-4, fused=True)
        repeats = 5 if self.quick else 50
        timings: dict[str, list[float]] = {"sample": [], "copy": [], "update": []}
        for i in range(repeats + 2):
            t0 = time.perf_counter()
            batch = cast(ReplayBatch, buffer.sample(32, pin=self.cuda))  # a transition buffer
            t1 = time.perf_counter()
            moved = batch.to_device(device)
            sync(device)
            t2 = time.perf_counter()
            loss = model.td_loss(moved, model.td_target(moved)).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sync(device)
            t3 = time.perf_counter()
            if i >= 2:  # the first two warm up the allocator and kernels
                for key, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                    timings[key].append(seconds * 1e3)
        ms = {key: round(float(np.median(values)), 3) for key, values in timings.items()}
        return Result(f"Breakout-sized update on {device.type}", "pass",
                      ", ".join(f"{k} {v} ms" for k, v in ms.items()), numbers=ms)  # fmt: skip

    # ---- refusals ---------------------------------------------------------------------------------

    def refusal(self) -> Result:
        """`CUDA_VISIBLE_DEVICES= train.py --accelerator gpu` exits 2 with one line, before writing anything."""
        logdir = self.work / "refused"
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--accelerator", "gpu", "--logdir", str(logdir)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        lines = done.stderr.strip().splitlines()
        ok = done.returncode == 2 and len(lines) == 1 and not logdir.exists()
        return Result("--accelerator gpu without a GPU", "pass" if ok else "fail",
                      f"exit {done.returncode}: {lines[-1] if lines else ''}")  # fmt: skip


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine() -> dict[str, Any]:
    """What ran the check: the GPU (if any), the CPU and the versions."""
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "lightning": pl.__version__, "cpu": cpu_name(),
                            "cpu_count": os.cpu_count()}  # fmt: skip
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def table(results: list[Result]) -> str:
    rows = ["| check | status | result | seconds |", "|---|---|---|---|"]
    rows += [f"| {r.name} | {r.status} | {r.summary} | {r.seconds:.1f} |" for r in results]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gpu_check", help="report folder")
    parser.add_argument("--quick", action="store_true", help="small sizes (the test suite's CPU run)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these checks (method names)")
    args = parser.parse_args(argv)
    quiet_lightning_messages()
    args.out.mkdir(parents=True, exist_ok=True)
    checks = Checks(args.out, args.quick)
    names = ["refusal", "fused_step", "throughput", "precisions", "unscaled_norm", "sync_audit", "determinism",
             "breakout_profile"]  # fmt: skip
    results: list[Result] = []
    print(f"gpu_check on {machine().get('gpu', 'no GPU (CPU checks only)')}", flush=True)
    for name in names if args.only is None else args.only:
        start = time.perf_counter()
        try:  # the runs' own summaries go to the log, not between the rows
            with open(args.out / "runs.log", "a") as log, contextlib.redirect_stdout(log):
                result = getattr(checks, name)()
        except Exception as err:  # a check that crashes is a failed check; the others still run
            result = Result(name, "fail", f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
        result.seconds = time.perf_counter() - start
        results.append(result)
        print(f"  {result.status:<7} {result.name}: {result.summary} ({result.seconds:.0f} s)", flush=True)
    report = {"machine": machine(), "quick": args.quick, "checks": [asdict(r) for r in results]}
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "report.md").write_text(
        f"# GPU check\n\nMachine: {json.dumps(report['machine'])}\n\n{table(results)}\n"
    )
    print(table(results))
    return 1 if any(r.status == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
