"""The allowed range of every numeric setting, stated once.

The command line checks a run's settings against `BOUNDS` before anything is built (errors
name the flag, `--lr`), and each constructor checks the arguments it takes against the same
entry (errors name the argument, `lr`), so a library user gets the same rule and message.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dqn_lightning.errors import ConfigError


@dataclass(frozen=True)
class Bound:
    """A closed or open interval; None leaves that side unbounded. Values must also be finite."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        """Whether `value` lies inside."""
        if not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def text(self) -> str:
        """The rule in words: `>= 1`, `> 0`, `in [0, 1]`, `in (0, 1]`."""
        if self.low is not None and self.high is not None:
            return (
                f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"
            )
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        return f"{'<' if self.high_open else '<='} {_num(self.high)}"

    def outside(self) -> float:
        """A value just outside the range (for tests that show each rule is enforced)."""
        if self.low is not None:
            return self.low if self.low_open else self.low - 1
        if self.high is not None:
            return self.high if self.high_open else self.high + 1
        return math.inf  # only "finite" to break


def _num(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


AT_LEAST_1 = Bound(1)
NON_NEGATIVE = Bound(0)
POSITIVE = Bound(0, low_open=True)
UNIT = Bound(0, 1)

BOUNDS: dict[str, Bound] = {
    "total_timesteps": AT_LEAST_1,
    "max_episodes": AT_LEAST_1,
    "seed": Bound(0, 2**32 - 1),  # numpy's and Lightning's seed range
    "lr": POSITIVE,
    "lr_end": NON_NEGATIVE,
    "gamma": UNIT,
    "batch_size": AT_LEAST_1,
    "buffer_size": AT_LEAST_1,
    "learning_starts": NON_NEGATIVE,
    "train_freq": AT_LEAST_1,
    "num_envs": AT_LEAST_1,
    "gradient_steps": AT_LEAST_1,
    "rounds_per_batch": AT_LEAST_1,
    "target_update_interval": NON_NEGATIVE,  # 0: no target network
    "eps_start": UNIT,
    "eps_end": UNIT,
    "exploration_fraction": UNIT,
    "exploration_steps": NON_NEGATIVE,
    "hidden_sizes": AT_LEAST_1,  # each width
    "optimizer_eps": POSITIVE,
    "rmsprop_alpha": Bound(0, 1, low_open=True, high_open=True),
    "max_grad_norm": POSITIVE,
    "tau": Bound(0, 1, low_open=True),  # 1: hard copy
    "n_step": AT_LEAST_1,
    "random_shift": NON_NEGATIVE,
    "reset_interval": AT_LEAST_1,
    "reset_layers": AT_LEAST_1,
    "intensity_jitter": NON_NEGATIVE,
    "core_size": AT_LEAST_1,
    "sequence_length": AT_LEAST_1,
    "sequence_overlap": NON_NEGATIVE,
    "burn_in": NON_NEGATIVE,
    "priority_eta": UNIT,
    "atoms": Bound(2),
    "v_min": Bound(),
    "v_max": Bound(),
    "stop_at_return": Bound(),  # any return an env can score
    "quantiles": AT_LEAST_1,
    "per_alpha": NON_NEGATIVE,
    "per_beta_start": UNIT,
    "per_eps": POSITIVE,
    "eval_interval": AT_LEAST_1,
    "eval_episodes": NON_NEGATIVE,  # 0: no evaluation
    "num_nodes": AT_LEAST_1,
    "max_steps": Bound(-1),  # -1: no limit
    "torch_threads": AT_LEAST_1,
    "checkpoint_interval": AT_LEAST_1,
    "keep_checkpoints": AT_LEAST_1,
}


def check_bounds(flags: bool = False, **values: float | Sequence[float] | None) -> None:
    """Raises a one-line `ConfigError` for the first value outside its `BOUNDS` entry (None passes).

    `flags`: name the setting as its command-line flag (`--batch-size`) instead of the argument.
    """
    for name, value in values.items():
        if value is None:
            continue
        bound = BOUNDS[name]
        members = value if isinstance(value, Sequence) else (value,)
        if not all(bound.holds(float(member)) for member in members):
            shown = f"--{name.replace('_', '-')}" if flags else name
            each = "each of " if isinstance(value, Sequence) else ""
            got = " ".join(str(member) for member in members) if isinstance(value, Sequence) else value
            raise ConfigError(f"{each}{shown} must be {bound.text()}, got {got}")
