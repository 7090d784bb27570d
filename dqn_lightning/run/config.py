"""Where a run's settings come from: presets, config files and flags, layered into a `TrainConfig`.

Precedence, lowest first: the dataclass defaults, the preset (`--preset`, else the one made for
`--env`'s env, else none; with neither flag `cartpole`), `--config FILE.yaml`, then the flags
typed (see `SETTINGS_RULES`). Help texts are the field docstrings below.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import yaml

from dqn_lightning.callbacks.checkpointing import latest_checkpoint
from dqn_lightning.errors import ConfigError
from dqn_lightning.learner.checkpoint_file import read_checkpoint
from dqn_lightning.run import cli
from dqn_lightning.run.devices import placement
from dqn_lightning.run.train_config import TrainConfig

PRESET_DIR = Path(__file__).parent / "presets"
RUN_CONFIG = "config.yaml"


SETTINGS_RULES = """\
Where settings come from, later wins: the defaults below; a preset (--preset NAME; without it,
the preset of --env's env if there is one, else none; with neither, cartpole); --config
FILE.yaml; the flags you type. A flag changes only its own setting, with one exception: the
update rate. --train-freq alone keeps the preset's gradient steps per env step, as near as
whole numbers allow and at least 1 (so --train-freq 1 on the cartpole preset, 128 updates per
256 env steps, gives 1 update per env step, not 128), and --gradient-steps alone keeps its
--train-freq. Each run prints where its settings came from
and records the preset in config.yaml."""


def build_parser(prog: str = "train.py") -> argparse.ArgumentParser:
    """The CLI: one dashed flag per `TrainConfig` field, plus --config."""
    parser = cli.build_parser(TrainConfig, prog, "Train a DQN agent with PyTorch Lightning.", SETTINGS_RULES)
    parser.add_argument("--config", help="YAML file of settings (keys as the flags).")
    return parser


def presets() -> list[str]:
    """Names of the presets shipped with the package."""
    return sorted(path.stem for path in PRESET_DIR.glob("*.yaml"))


def env_preset(env_id: str) -> str | None:
    """The preset made for `env_id` (the one whose `env` it is), or None."""
    return next((name for name in presets() if _preset_settings(name).get("env") == env_id), None)


def _preset_settings(name: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """A preset's settings over those of the preset its `based_on` names, if any.

    A variant of a recipe (one game's env, updates in bursts) then states only what it changes,
    and a fix to the recipe reaches every variant.
    """
    if name not in presets():
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(presets())}")
    if name in chain:
        raise ConfigError(f"presets based on each other in a loop: {' -> '.join((*chain, name))}; break the loop")
    settings = load_settings(PRESET_DIR / f"{name}.yaml", "preset", extra_keys=("based_on",))
    parent = settings.pop("based_on", None)
    return {**_preset_settings(str(parent), (*chain, name)), **settings} if parent is not None else settings


def load_settings(path: Path, what: str, extra_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Reads a YAML mapping of settings; unknown keys (beyond `extra_keys`) are an error, not silently ignored."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read {what} {path}: {' '.join(str(err).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be a mapping of setting: value")
    known = {field.name for field in dataclasses.fields(TrainConfig)} | set(extra_keys)
    settings = {str(key).replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"{what} {path} has unknown setting(s) {', '.join(unknown)}; see train.py --help")
    return settings


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """Parses the command line (with presets and config files) into a validated `TrainConfig`."""
    return parse_settings(argv)[0]


def parse_settings(argv: list[str] | None = None) -> tuple[TrainConfig, str]:
    """The validated settings, and one line saying where they came from (for the run to print)."""
    parser = build_parser()
    typed = vars(parser.parse_args(list(argv if argv is not None else sys.argv[1:])))
    config_file = typed.pop("config", None)
    from_file = _parse_layer(load_settings(Path(config_file), "config file")) if config_file else {}
    chosen = {**from_file, **typed}  # what the user asked for, in the file or as flags
    resume = chosen.get("resume")
    if resume is not None:
        # a resumed run starts from the settings the run was started with (its config.yaml)
        checkpoint = latest_checkpoint(chosen.get("logdir", "lightning_logs")) if resume == "last" else Path(resume)
        read_checkpoint(checkpoint)
        saved = run_dir_of(checkpoint) / RUN_CONFIG
        base = _parse_layer(load_settings(saved, "run config")) if saved.is_file() else {}
        chosen["resume"] = str(checkpoint)
        origin = f"the settings of the resumed run ({saved})"
    else:
        preset: str = chosen.get("preset") or (env_preset(chosen["env"]) if "env" in chosen else "cartpole") or "none"
        has_preset = preset != "none"
        base = _parse_layer(_preset_settings(preset)) if has_preset else {}
        if has_preset and "env" not in base and "env" not in chosen:
            example = "MinAtar/Breakout-v0" if preset.startswith("minatar") else "CartPole-v1"
            raise ConfigError(f"preset {preset} is a recipe for any env of its kind: add --env, e.g. --env {example}")
        chosen["preset"] = preset
        origin = f"preset {preset}" if has_preset else "the defaults (no preset for this env)"
    adjusted = _keep_update_rate(base, chosen)
    merged, switched = _with_switches(base, chosen)
    config = dataclasses.replace(TrainConfig(), **(merged | adjusted))
    config.validate()
    typed_flags = " ".join(cli.as_flags({k: v for k, v in chosen.items() if k not in ("preset", "resume")}))
    note = f"Settings: {origin}; " + (f"then {typed_flags}" if typed_flags else "no other flags")
    if config_file:
        note += f" (with {config_file})"
    if adjusted:
        note += f"; {' '.join(cli.as_flags(adjusted))} keeps the preset's updates per env step"
    if switched:
        note += f"; {switched}"
    place = placement(config.accelerator, config.devices, config.strategy)
    if place.note:
        note += f"; {place.note}"
    if config.action_masks:
        note += "; action masks on"
    return config, note


# what --rainbow turns on (Hessel et al. 2018: n = 3, PER alpha 0.5 and beta from 0.4, 51 atoms)
RAINBOW = {"double": True, "dueling": True, "n_step": 3, "prioritized": True, "per_alpha": 0.5, "per_beta_start": 0.4,
           "distributional": "c51", "noisy": True}  # fmt: skip
EPSILON = ("eps_start", "eps_end")


def _with_switches(base: dict[str, Any], chosen: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Layers base and chosen settings with --rainbow's and --noisy's implied ones; says what they did.

    --rainbow's settings sit just above the layer that turned it on (typed: over the preset; in a
    preset: under that preset's own values), so anything set beside it wins. With noisy nets,
    epsilon is 0 unless set where noisy nets were turned on or by the user.
    """
    notes = []
    rainbow_on = bool(chosen.get("rainbow") or (base.get("rainbow") and chosen.get("rainbow") is not False))
    if not rainbow_on:
        merged = base | chosen
    else:
        merged = base | RAINBOW | chosen if chosen.get("rainbow") else RAINBOW | base | chosen
        kept = {key: value for key, value in RAINBOW.items() if merged.get(key) == value}
        notes.append("rainbow turns on " + " ".join(cli.as_flags(kept)))
    noisy_layer = chosen if "noisy" in chosen or chosen.get("rainbow") else base
    eps_set = [key for key in EPSILON if key in chosen or key in noisy_layer]
    if merged.get("noisy") and not eps_set:
        merged |= {key: 0.0 for key in EPSILON}
        notes.append("noisy nets explore, so --eps-start 0 --eps-end 0")
    return merged, "; ".join(notes)


def _parse_layer(settings: dict[str, Any]) -> dict[str, Any]:
    """A file's settings, typed and checked as data with the flags' rules and messages."""
    return cli.typed_settings(TrainConfig, settings)


def _keep_update_rate(base: dict[str, Any], chosen: dict[str, Any]) -> dict[str, Any]:
    """The gradient steps (or env steps) that keep the base's updates per env step when only one is set."""
    base_freq, base_updates = base.get("train_freq", 1), base.get("gradient_steps", 1)
    if "train_freq" in chosen and "gradient_steps" not in chosen:
        return {"gradient_steps": max(1, round(chosen["train_freq"] * base_updates / base_freq))}
    if "gradient_steps" in chosen and "train_freq" not in chosen:
        return {"train_freq": max(1, round(chosen["gradient_steps"] * base_freq / base_updates))}
    return {}


def save_run_config(config: TrainConfig, run_dir: str | Path) -> Path:
    """Writes the run's settings as `config.yaml`, which `--resume` starts from."""
    values = dataclasses.asdict(config)
    values["resume"] = None
    values = {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}
    path = Path(run_dir) / RUN_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def run_dir_of(checkpoint: str | Path) -> Path:
    """`<logdir>/<env>/version_N` for a checkpoint at `<run dir>/checkpoints/<file>.ckpt`."""
    return Path(checkpoint).resolve().parent.parent
