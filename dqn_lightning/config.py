"""The training run's settings: one typed dataclass, its CLI, and the presets.

Precedence, lowest first: the dataclass defaults, `--preset` (default `cartpole`), `--config
FILE.yaml`, then flags given on the command line. Help texts are the field docstrings below.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, get_type_hints

import docstring_parser
import yaml
from jsonargparse import ArgumentParser

from dqn_lightning.checkpoints import latest_checkpoint, read_checkpoint
from dqn_lightning.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"
RUN_CONFIG = "config.yaml"


@dataclass
class TrainConfig:
    """Everything one training run needs."""

    preset: str = "cartpole"
    """Preset the settings start from (see dqn_lightning/presets/)."""
    env: str = "CartPole-v1"
    """Gymnasium env id (discrete actions, Box observations)."""
    total_timesteps: int | None = 50_000
    """Env-step budget over all envs (null: stop on --max-episodes only)."""
    max_episodes: int | None = None
    """Episode budget, like the tutorial's 200 games (null: no episode limit)."""
    seed: int = 0
    """Seeds Lightning, the envs, exploration and the replay sampler."""
    lr: float = 1e-3
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    batch_size: int = 64
    """Transitions per gradient step."""
    buffer_size: int = 50_000
    """Replay buffer capacity in transitions."""
    learning_starts: int = 1_000
    """Random-policy env steps that fill the buffer before learning."""
    train_freq: int = 1
    """Env steps (of every env) per training step."""
    num_envs: int = 1
    """Envs stepped together in a Gymnasium SyncVectorEnv; each step adds num_envs transitions."""
    gradient_steps: int = 1
    """Gradient steps per training step."""
    target_update_interval: int = 500
    """Gradient steps between target-network copies (0: no target network)."""
    eps_start: float = 1.0
    """Initial exploration rate."""
    eps_end: float = 0.05
    """Final exploration rate."""
    exploration_fraction: float = 0.1
    """Fraction of --total-timesteps over which epsilon decays linearly."""
    exploration_steps: int | None = None
    """Epsilon decay length in env steps (overrides --exploration-fraction)."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden layer widths of the Q-network, e.g. [256, 256]."""
    double: bool = False
    """Double DQN: the online network picks the next action, the target network values it."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean(A)."""
    loss: Literal["mse", "huber"] = "mse"
    """TD loss."""
    max_grad_norm: float | None = None
    """Clip each update's gradient norm to this (null: no clipping)."""
    tau: float = 1.0
    """Target update weight: 1.0 hard copy, below 1 a soft (Polyak) update every --target-update-interval."""
    n_step: int = 1
    """n-step returns: rewards summed per target before bootstrapping with gamma^n (1: plain DQN)."""
    prioritized: bool = False
    """Prioritized experience replay (proportional, sum tree)."""
    per_alpha: float | None = None
    """Prioritization exponent (needs --prioritized; null: 0.6)."""
    per_beta_start: float | None = None
    """Initial importance-sampling exponent, annealed to 1 over --total-timesteps (needs --prioritized; null: 0.4)."""
    per_eps: float | None = None
    """Added to |TD error| to form a priority (needs --prioritized; null: 1e-6)."""
    vector: Literal["sync", "async"] = "sync"
    """Vector env type for --num-envs: sync (one process) or async (one subprocess per env)."""
    eval_interval: int = 5_000
    """Env steps between greedy evaluations."""
    eval_episodes: int = 20
    """Greedy episodes per evaluation (0: no evaluation)."""
    logdir: str = "lightning_logs"
    """Root folder for TensorBoard logs, checkpoints and summary.json."""
    accelerator: str = "auto"
    """Lightning accelerator: cpu, gpu, auto, ..."""
    devices: str = "auto"
    """Lightning devices: a count, a list like [0, 1], or auto."""
    strategy: str = "auto"
    """Lightning strategy: auto, ddp (one process per device, each with its own envs and buffer), ..."""
    num_nodes: int = 1
    """Machines for multi-node DDP (Lightning's num_nodes; SLURM or torchrun set the rest)."""
    precision: str | None = None
    """Lightning precision, e.g. 32-true, bf16-mixed (null: Lightning's default)."""
    max_steps: int = -1
    """Extra limit on Lightning's global step, which counts training steps on one process (-1: none)."""
    max_time: str | None = None
    """Extra wall-time limit, DD:HH:MM:SS (Lightning's max_time)."""
    torch_threads: int | None = 1
    """CPU threads for torch; 1 is fastest for small networks (null: torch's default)."""
    checkpoint_interval: int | None = None
    """Env steps between periodic checkpoints, kept besides last and best (null: none)."""
    save_buffer: Literal["auto", "always", "never"] = "auto"
    """Save the replay buffer beside checkpoints for exact resume (auto: if it is at most 1 GiB)."""
    resume: str | None = None
    """Continue a run from this checkpoint, or 'last' for the newest one under --logdir."""
    eval_video: bool = False
    """After each evaluation, log one greedy episode to TensorBoard as eval/video (needs pygame)."""

    def validate(self) -> None:
        """Raises `ConfigError` for settings that cannot work together."""
        _positive(self, "batch_size", "buffer_size", "train_freq", "num_envs", "gradient_steps", "eval_interval")
        if self.total_timesteps is None and self.max_episodes is None:
            raise ConfigError("give a budget: --total-timesteps or --max-episodes")
        optional = ("total_timesteps", "max_episodes", "checkpoint_interval")
        _positive(self, *(name for name in optional if getattr(self, name) is not None))
        for name in ("lr", "gamma", "eps_start", "eps_end", "exploration_fraction", "tau"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"--{_flag(name)} must be a finite number, got {getattr(self, name)}")
        _positive(self, "n_step", "num_nodes")
        per_set = [name for name in ("per_alpha", "per_beta_start", "per_eps") if getattr(self, name) is not None]
        if per_set and not self.prioritized:
            raise ConfigError(f"--{_flag(per_set[0])} only applies to prioritized replay: add --prioritized")
        if self.n_step > 1 and self.gamma == 0:
            raise ConfigError(
                f"--n-step {self.n_step} with --gamma 0 adds nothing (every reward after the first is weighted 0): "
                "use --n-step 1 or a gamma above 0"
            )
        for name in ("max_grad_norm", "per_alpha", "per_beta_start", "per_eps"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"--{_flag(name)} must be a finite number, got {value}")
        if self.learning_starts < self.batch_size:
            raise ConfigError(
                f"--learning-starts {self.learning_starts} is below one batch ({self.batch_size}): the first "
                f"batch would find too few transitions; raise --learning-starts to at least {self.batch_size}"
            )
        if self.buffer_size < self.batch_size:
            raise ConfigError(f"--buffer-size {self.buffer_size} cannot hold one batch of {self.batch_size}")
        if self.total_timesteps is not None and self.learning_starts >= self.total_timesteps:
            raise ConfigError(
                f"--learning-starts {self.learning_starts} uses the whole --total-timesteps {self.total_timesteps}: "
                "nothing would be learned; lower it or raise the budget"
            )


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _positive(config: TrainConfig, *names: str) -> None:
    for name in names:
        if getattr(config, name) < 1:
            raise ConfigError(f"--{_flag(name)} must be >= 1, got {getattr(config, name)}")


class _OneLineParser(ArgumentParser):
    """jsonargparse's parser, with errors raised as one-line `ConfigError`s."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        raise ConfigError(re.sub(r"\s+", " ", message).strip())


def build_parser(prog: str = "train.py") -> ArgumentParser:
    """The CLI: one dashed flag per `TrainConfig` field, plus --preset and --config."""
    parser = _OneLineParser(prog=prog, description="Train a DQN agent with PyTorch Lightning.")
    helps = {p.arg_name: p.description for p in docstring_parser.parse_from_object(TrainConfig).params}
    parser.add_argument("--config", type=str | None, default=None, help="YAML file of settings (keys as the flags).")
    types = get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        parser.add_argument(
            f"--{_flag(field.name)}", type=types[field.name], default=field.default, help=helps[field.name]
        )
    return parser


def presets() -> list[str]:
    """Names of the presets shipped with the package."""
    return sorted(path.stem for path in PRESET_DIR.glob("*.yaml"))


def load_settings(path: Path, what: str) -> dict[str, Any]:
    """Reads a YAML mapping of settings; unknown keys are an error, not silently ignored."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read {what} {path}: {' '.join(str(err).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be a mapping of setting: value")
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    settings = {str(key).replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"{what} {path} has unknown setting(s) {', '.join(unknown)}; see train.py --help")
    return settings


def _as_flags(settings: dict[str, Any]) -> list[str]:
    # YAML values become flags placed before the user's, so the user's flags win and every
    # value passes through the same type checks
    return [tok for key, value in settings.items() for tok in (f"--{_flag(key)}", _as_text(value))]


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """Parses the command line (with presets and config files) into a validated `TrainConfig`."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default="cartpole")
    pre.add_argument("--config", default=None)
    pre.add_argument("--resume", default=None)
    pre.add_argument("--logdir", default="lightning_logs")
    known, _ = pre.parse_known_args(argv)
    if known.preset not in presets():
        raise ConfigError(f"unknown preset {known.preset!r}; choose one of: {', '.join(presets())}")
    layered = _as_flags(load_settings(PRESET_DIR / f"{known.preset}.yaml", "preset"))
    resume_flags: list[str] = []
    if known.resume is not None:
        # a resumed run starts from the settings the run was started with (its config.yaml)
        checkpoint = latest_checkpoint(known.logdir) if known.resume == "last" else Path(known.resume)
        read_checkpoint(checkpoint)
        saved = run_dir_of(checkpoint) / RUN_CONFIG
        if saved.is_file():
            layered = _as_flags(load_settings(saved, "run config"))
        resume_flags = ["--resume", str(checkpoint)]
    if known.config is not None:
        layered += _as_flags(load_settings(Path(known.config), "config file"))
    namespace = build_parser().parse_args(layered + list(argv if argv is not None else sys.argv[1:]) + resume_flags)
    values = {field.name: getattr(namespace, field.name) for field in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**values)
    config.validate()
    return config


def save_run_config(config: TrainConfig, run_dir: str | Path) -> Path:
    """Writes the run's settings as `config.yaml`, which `--resume` starts from."""
    values = dataclasses.asdict(config)
    values["resume"] = None
    values["hidden_sizes"] = list(config.hidden_sizes)
    path = Path(run_dir) / RUN_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def run_dir_of(checkpoint: str | Path) -> Path:
    """`<logdir>/<env>/version_N` for a checkpoint at `<run dir>/checkpoints/<file>.ckpt`."""
    return Path(checkpoint).resolve().parent.parent
