"""The command line as people type it, settings that follow the env, and the README's commands kept working."""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from dqn_lightning import ConfigError
from dqn_lightning.run import config as config_module
from dqn_lightning.run import train
from dqn_lightning.run.config import TrainConfig, build_parser, parse_config, parse_settings
from tests.helpers import load_script, run_train

ROOT = Path(__file__).resolve().parents[2]


def test_switches_and_lists_in_every_usual_spelling() -> None:
    assert parse_config(["--double", "--dueling"]).double is True
    assert parse_config(["--double", "true"]).double is True  # the spelling of older configs and scripts
    assert parse_config(["--double", "--no-double"]).double is False  # later wins
    assert parse_config(["--double", "false"]).double is False
    assert parse_config(["--hidden-sizes", "256", "64"]).hidden_sizes == (256, 64)
    assert parse_config(["--hidden-sizes", "[32,16]"]).hidden_sizes == (32, 16)
    assert parse_config(["--max-grad-norm", "10"]).max_grad_norm == 10.0
    assert parse_config(["--preset", "lunarlander", "--max-grad-norm", "null"]).max_grad_norm is None
    with pytest.raises(ConfigError, match="unrecognized arguments: --dou"):
        parse_config(["--dou"])  # no silent abbreviations


def test_yaml_values_take_the_same_path_as_flags(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("double: true\nhidden-sizes: [64, 64]\nper_alpha: null\nloss: huber\n")
    config = parse_config(["--config", str(path), "--no-double"])
    assert (config.double, config.hidden_sizes, config.loss) == (False, (64, 64), "huber")
    path.write_text("lr: fast\n")
    with pytest.raises(ConfigError, match="argument --lr: expected a number, got 'fast'"):
        parse_config(["--config", str(path)])


def test_settings_follow_the_env_and_say_where_they_came_from() -> None:
    config, origin = parse_settings(["--env", "Acrobot-v1"])
    assert (config.preset, config.lr, config.hidden_sizes) == ("acrobot", 0.00063, (256, 256))
    assert origin == "Settings: preset acrobot; then --env Acrobot-v1"
    config, origin = parse_settings(["--env", "MinAtar/Seaquest-v0"])
    assert config.preset == "minatar-seaquest" and config.network == "minatar-cnn"
    # an env without a preset starts from the neutral defaults, not from CartPole's tuned bursts
    config, origin = parse_settings(["--env", "tests.toy_envs:dqn-test/NoArguments-v0"])
    defaults = TrainConfig()
    assert config.preset == "none" and (config.train_freq, config.gradient_steps, config.lr) == (1, 1, defaults.lr)
    assert origin.startswith("Settings: the defaults (no preset for this env)")
    assert parse_config([]).preset == "cartpole"  # no flag at all: the README's first command
    assert parse_config(["--preset", "acrobot", "--env", "CartPole-v1"]).lr == 0.00063  # a named preset wins


def test_one_rate_flag_keeps_the_presets_updates_per_env_step() -> None:
    # cartpole: 128 updates after 256 env steps, so --train-freq 1 alone means 1 update per env step, not 128
    config, origin = parse_settings(["--train-freq", "1"])
    assert (config.train_freq, config.gradient_steps) == (1, 1)
    assert "--gradient-steps 1 keeps the preset's updates per env step" in origin
    assert parse_config(["--train-freq", "64"]).gradient_steps == 32
    assert parse_config(["--gradient-steps", "4"]).train_freq == 8
    both = parse_config(["--train-freq", "1", "--gradient-steps", "3"])
    assert (both.train_freq, both.gradient_steps) == (1, 3)  # both given: both as typed


def test_a_preset_based_on_another_states_only_what_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "recipe.yaml").write_text("lr: 0.001\nbatch_size: 32\ngamma: 0.9\n")
    (tmp_path / "variant.yaml").write_text("based_on: recipe\nbatch_size: 64\n")
    (tmp_path / "game.yaml").write_text("based_on: variant\nenv: Acrobot-v1\ngamma: 0.95\n")
    monkeypatch.setattr(config_module, "PRESET_DIR", tmp_path)
    # each layer over the one it names: lr from recipe, batch from variant, gamma and env from game
    config = parse_config(["--preset", "game"])
    assert (config.lr, config.batch_size, config.gamma, config.env) == (0.001, 64, 0.95, "Acrobot-v1")
    assert parse_config(["--env", "Acrobot-v1"]).preset == "game"  # found by the env, as any preset
    (tmp_path / "recipe.yaml").write_text("based_on: game\nlr: 0.001\n")
    with pytest.raises(ConfigError, match="presets based on each other in a loop: game -> variant -> recipe -> game"):
        parse_config(["--preset", "game"])
    (tmp_path / "recipe.yaml").write_text("based_on: nosuch\n")
    with pytest.raises(ConfigError, match="unknown preset 'nosuch'"):
        parse_config(["--preset", "game"])
    (tmp_path / "own.yaml").write_text("based_on: recipe\n")
    with pytest.raises(ConfigError, match=r"config file .* unknown setting.*based_on"):
        parse_config(["--config", str(tmp_path / "own.yaml")])  # presets only: a config file layers over one


def test_minatar_game_presets_are_the_papers_recipe_in_bursts_ending_at_epsilon_001() -> None:
    paper = dataclasses.asdict(parse_config(["--preset", "minatar-paper", "--env", "MinAtar/Breakout-v0"]))
    for game, env in [("asterix", "Asterix"), ("freeway", "Freeway"), ("seaquest", "Seaquest"),
                      ("space-invaders", "SpaceInvaders")]:  # fmt: skip
        preset = dataclasses.asdict(parse_config(["--preset", f"minatar-{game}"]))
        changed = {key: value for key, value in preset.items() if paper[key] != value}
        assert changed == {
            "preset": f"minatar-{game}",
            "env": f"MinAtar/{env}-v0",
            "train_freq": 4,
            "gradient_steps": 4,
            "eps_end": 0.01,
        }
    breakout = parse_config(["--preset", "minatar-breakout"])
    assert (breakout.n_step, breakout.optimizer, breakout.rmsprop_alpha, breakout.rmsprop_centered) == (
        3,
        "adam",
        None,
        None,
    )


def test_help_documents_switches_lists_and_the_settings_rule() -> None:
    text = build_parser().format_help()
    assert "--double [true|false], --no-double" in text and "--hidden-sizes N [N ...]" in text
    assert "Where settings come from" in text and "--train-freq alone keeps" in text
    assert len(dataclasses.fields(TrainConfig)) == sum(f"--{f.name.replace('_', '-')}" in text
                                                       for f in dataclasses.fields(TrainConfig))  # fmt: skip


def test_run_config_records_the_preset(tmp_path: Path) -> None:
    config = parse_config(["--env", "Acrobot-v1", "--total-timesteps", "300", "--learning-starts", "200",
                           "--eval-episodes", "0", "--logdir", str(tmp_path)])  # fmt: skip
    summary = train(config)
    saved = yaml.safe_load((Path(summary["log_dir"]) / "config.yaml").read_text())
    assert saved["preset"] == "acrobot" and saved["env"] == "Acrobot-v1"


# ---- the README's commands --------------------------------------------------------------------


DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def readme_commands() -> list[list[str]]:
    """Every `python scripts/...` command in the code blocks and inline code of the README and the
    docs pages, as argv lists."""
    text = "\n".join(page.read_text() for page in DOC_PAGES)
    found = re.findall(r"```[a-z]*\n(.*?)```", text, re.S) + re.findall(r"`(python scripts/[^`]+)`", text)
    commands = []
    for chunk in found:
        for line in chunk.splitlines():
            match = re.search(r"python scripts/\S+\.py[^#&|]*", line)
            if match:
                commands.append(shlex.split(match.group(0).strip())[1:])
    return commands


def readme_user_network() -> str:
    """The docs' example Q-network module (my_nets.py), as a user would save it."""
    text = (ROOT / "docs" / "own-code.md").read_text()
    match = re.search(r"```python\n(from torch import nn\n+class LayerNormQ.*?)\n+model = ", text, re.S)
    assert match, "README: the LayerNormQ example of 'Your own Q-network'"
    return match.group(1)


class Parsed(Exception):
    """Raised instead of running a script once its arguments parsed."""


CHEAP_ENVS = ("CartPole", "Acrobot", "MountainCar", "MinAtar")


def test_readme_parts_example_trains_and_loads_its_best_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the "own Lightning code" example as users copy it, on a budget a test affords
    code = readme_parts_example("EnvLoop(")
    small = code.replace("total_timesteps=50_000", "total_timesteps=1_200").replace(
        "val_check_interval=5_000", "val_check_interval=400"
    )
    assert small.count("1_200") == 1 and small.count("=400") == 1, "the example's budget moved: update this test"
    monkeypatch.chdir(tmp_path)
    names: dict[str, object] = {}
    exec(compile(small, "README example", "exec"), names)
    checkpoints = sorted(p.name for p in (tmp_path / "lightning_logs").glob("*/checkpoints/*.ckpt"))
    assert "last.ckpt" in checkpoints and any(name.startswith("best-envstep") for name in checkpoints)
    assert names["actions"].shape == (3,)  # type: ignore[attr-defined]


def test_readme_one_call_example_trains_through_the_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = readme_parts_example("from dqn_lightning.run import")
    small = code.replace(
        '"20000"', '"600", "--learning-starts", "200", "--eval-interval", "300", "--eval-episodes", "2"'
    )
    assert small.count('"600"') == 2, "the example's budget moved: update this test"
    monkeypatch.chdir(tmp_path)
    names: dict[str, object] = {}
    exec(compile(small, "README example", "exec"), names)
    summary = names["summary"]
    assert summary["env"] == "Acrobot-v1" and summary["env_steps"] == 600  # type: ignore[index]


def readme_parts_example(marker: str) -> str:
    """The python block of docs/own-code.md ('Using the parts in your own Lightning code') with `marker`."""
    section = (ROOT / "docs" / "own-code.md").read_text()
    blocks = [block for block in re.findall(r"```python\n(.*?)```", section, re.S) if marker in block]
    assert blocks, f"docs/own-code.md: no example with {marker!r}"
    return blocks[0]


def test_readme_tour_example_trains_the_parts_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "README.md").read_text()
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "EnvLoop(" in block]
    small = code.replace("total_timesteps=50_000", "total_timesteps=1_500").replace(
        "val_check_interval=5_000", "val_check_interval=500"
    )
    assert small.count("1_500") == 1 and small.count("val_check_interval=500") == 1, (
        "the example moved: update this test"
    )
    monkeypatch.chdir(tmp_path)
    names: dict[str, Any] = {}
    exec(compile(small, "README example", "exec"), names)
    assert names["env_loop"].env_steps == 1_500 and names["model"].gradient_step > 0
    assert any((tmp_path / "lightning_logs").glob("*/checkpoints/best-envstep*.ckpt"))


def test_readme_has_commands_to_check() -> None:
    scripts = {argv[0] for argv in readme_commands()}
    assert {"scripts/train.py", "scripts/play.py", "scripts/seed_table.py", "scripts/minatar_table.py"} <= scripts


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda argv: " ".join(argv)[:80])
def test_readme_command_parses_and_cheap_ones_run(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")  # the README sets it on the command line
    (tmp_path / "my_run.yaml").write_text("lr: 0.001\n")
    (tmp_path / "best.yaml").write_text("preset: none\nenv: Acrobot-v1\nlr: 0.001\n")  # as tune.py writes it
    (tmp_path / "my_nets.py").write_text(readme_user_network())
    monkeypatch.delitem(sys.modules, "my_nets", raising=False)  # this test's own, not another's
    script, flags = Path(argv[0]).stem, argv[1:]
    if script == "lightning_cli":  # LightningCLI parses with jsonargparse: check the whole config, then stop
        pytest.importorskip("jsonargparse", reason="the cli extra: pip install -e '.[cli]'")
        flags = [str(ROOT / flag) if flag.startswith("scripts/") else flag for flag in flags]
        with pytest.raises(SystemExit) as exit_info:
            load_script(script).main([*flags, "--print_config"])
        assert exit_info.value.code in (0, None)
        return
    if script != "train":
        check_other_script(script, flags, monkeypatch)
        return
    if "--help" in flags:
        with pytest.raises(SystemExit) as exit_info:
            parse_settings(flags)
        assert exit_info.value.code == 0
        return
    if {"gpu", "cuda"} & set(flags) and not torch.cuda.is_available():  # a GPU command on a machine without one
        with pytest.raises(ConfigError, match="torch sees no CUDA GPU here"):
            parse_settings(flags)
        return
    if "--resume" in flags:  # needs a run to resume: check that the flag parses up to the file check
        with pytest.raises(ConfigError, match=r"checkpoint|no last\.ckpt|not found"):
            parse_settings(flags)
        return
    config = parse_config(flags)
    if config.accelerator in ("cpu", "auto") and config.strategy == "auto" and config.env.startswith(CHEAP_ENVS):
        tiny = dataclasses.replace(config, total_timesteps=300, max_episodes=None, learning_starts=150, batch_size=32,
                                   buffer_size=1_000, eval_interval=150, eval_episodes=1, eval_video=False,
                                   logdir=str(tmp_path / "logs"))  # fmt: skip
        summary = train(tiny)
        assert summary["env_steps"] == 300


def check_other_script(script: str, flags: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports scripts/<script>.py and runs its main only as far as its argument parsing."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, args=None, namespace=None):  # type: ignore[no-untyped-def]
        original(self, args, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *flags])
    module = load_script(script)
    with pytest.raises(Parsed):
        module.main()


def test_default_console_is_clean(tmp_path: Path) -> None:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    flags = ["--total-timesteps", "1500", "--eval-interval", "500", "--eval-episodes", "2", "--logdir", "logs"]
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *flags], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    output = (result.stdout + result.stderr).replace("\r", "\n")
    assert output.startswith("Settings: preset cartpole; then --total-timesteps 1500")
    assert len(re.findall(r"^eval @ [\d,]+ env steps: [\d.]+ ± [\d.]+ \(best [\d.]+\)$", output, re.M)) >= 2
    for unwanted in ("Validation", "Training", "Tip:", "LeafSpec", "Warning", "GPU available", "Epoch 0", "Params"):
        assert unwanted not in output, unwanted
    quiet = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *flags, "--quiet"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert "eval @" not in quiet.stdout and "train:" not in quiet.stderr and "Summary" in quiet.stdout


def test_a_resumed_run_counts_env_steps_against_its_budget(tmp_path: Path) -> None:
    flags = ["--eval-interval", "500", "--eval-episodes", "2", "--logdir", "logs", "--learning-starts", "200"]
    first = run_train(*flags, "--total-timesteps", "1000", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = run_train("--resume", "last", "--logdir", "logs", "--total-timesteps", "1500", "--progress", "bar",
                        cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    output = (resumed.stdout + resumed.stderr).replace("\r", "\n")
    assert re.search(r"^train: 100%.*1500/1500 .* env steps/s", output, re.M), output[-1500:]
    # the bar starts at the restored step, so its rate counts this process's steps, not the first run's
    assert re.search(r"^train:.*\| 1000/1500 \[", output, re.M), output[:1500]
    for unwanted in ("exists and is not empty", "dirpath has changed", "Epoch 0", "/?"):
        assert unwanted not in output, unwanted


def test_files_are_typed_as_data_with_the_flags_rules_and_messages(tmp_path: Path) -> None:
    from dqn_lightning.run import cli
    from dqn_lightning.run.config import _preset_settings, presets

    parser = build_parser()
    for name in presets():  # every shipped preset: the same values as its settings typed as flags
        settings = _preset_settings(name)
        assert cli.typed_settings(TrainConfig, settings) == vars(parser.parse_args(cli.as_flags(settings))), name
    path = tmp_path / "run.yaml"
    for text, message in [
        ("batch_size: 2.5\n", "argument --batch-size: expected a whole number, got 2.5"),
        ("hidden_sizes: [64, 1.5]\n", "argument --hidden-sizes: expected whole numbers"),
        ("double: maybe\n", "argument --double: expected true or false, got 'maybe'"),
        ("loss: fancy\n", "argument --loss: expected one of mse, huber, got 'fancy'"),
        ("lr: .inf\n", "argument --lr: expected a finite number"),
        ("env: null\n", "argument --env: expected a value (null is not allowed here)"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_config(["--config", str(path)])
    path.write_text("lr: 1e-3\nhidden_sizes: 32\n")  # YAML reads 1e-3 as text: still the number
    config = parse_config(["--config", str(path)])
    assert (config.lr, config.hidden_sizes) == (0.001, (32,))
