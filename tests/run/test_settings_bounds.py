"""Every numeric setting has one range (dqn_lightning.bounds), and a value outside it exits 2 in one line.

The cases are generated from the settings dataclass, so a new numeric setting without a range fails here.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

from dqn_lightning.bounds import BOUNDS, Bound, check_bounds
from dqn_lightning.errors import ConfigError
from dqn_lightning.run import TrainConfig
from tests.helpers import run_main

# settings that only apply beside another one: what an out-of-range value of theirs needs with it
COMPANIONS = {
    "per_alpha": ["--prioritized"],
    "per_beta_start": ["--prioritized"],
    "per_eps": ["--prioritized"],
    "atoms": ["--distributional", "c51"],
    "v_min": ["--distributional", "c51"],
    "v_max": ["--distributional", "c51"],
    "quantiles": ["--distributional", "qr"],
    "rmsprop_alpha": ["--optimizer", "rmsprop"],
}


def numeric_settings() -> list[str]:
    hints = get_type_hints(TrainConfig)
    numeric = []
    for field in dataclasses.fields(TrainConfig):
        kinds = set(get_args(hints[field.name])) or {hints[field.name]}
        kinds |= {inner for kind in kinds for inner in get_args(kind)}  # tuple[int, ...] -> int
        if kinds & {int, float} and bool not in kinds:
            numeric.append(field.name)
    return numeric


def test_every_numeric_setting_has_exactly_one_range() -> None:
    assert sorted(numeric_settings()) == sorted(BOUNDS)


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_a_setting_out_of_range_exits_2_in_one_line_before_anything_is_written(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    value = BOUNDS[name].outside()
    shown = "inf" if math.isinf(value) else str(int(value) if float(value).is_integer() else value)
    option = f"--{name.replace('_', '-')}"
    monkeypatch.chdir(tmp_path)
    code, lines = run_main([*COMPANIONS.get(name, []), option, shown, "--logdir", "logs"], capsys)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("train.py: error:") and option in lines[0], lines
    assert not (tmp_path / "logs").exists()


def test_hidden_sizes_of_zero_is_one_line_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, lines = run_main(["--hidden-sizes", "64", "0"], capsys)
    assert code == 2
    assert lines == ["train.py: error: each of --hidden-sizes must be >= 1, got 64 0"]


@pytest.mark.parametrize(
    ("bound", "inside", "outside", "text"),
    [
        (Bound(1), [1, 7], [0, -3, math.nan], ">= 1"),
        (Bound(0, low_open=True), [1e-9, 5.0], [0.0, -1.0, math.inf], "> 0"),
        (Bound(0, 1), [0.0, 0.5, 1.0], [-0.01, 1.01], "in [0, 1]"),
        (Bound(0, 1, low_open=True), [1.0, 0.3], [0.0], "in (0, 1]"),
        (Bound(0, 1, low_open=True, high_open=True), [0.5], [0.0, 1.0], "in (0, 1)"),
        (Bound(-1), [-1, 0], [-2], ">= -1"),
    ],
)
def test_bounds_by_hand(bound: Bound, inside: list[float], outside: list[float], text: str) -> None:
    assert all(bound.holds(v) for v in inside) and not any(bound.holds(v) for v in outside)
    assert bound.text() == text and not bound.holds(bound.outside())


def test_library_arguments_get_the_same_rule_named_as_the_argument() -> None:
    with pytest.raises(ConfigError, match=r"^gamma must be in \[0, 1\], got 1.5$"):
        check_bounds(gamma=1.5)
    with pytest.raises(ConfigError, match=r"^--gamma must be in \[0, 1\], got 1.5$"):
        check_bounds(flags=True, gamma=1.5)
    check_bounds(gamma=None, lr=0.1)  # None is "not set" and passes
