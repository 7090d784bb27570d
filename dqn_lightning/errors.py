"""The user-facing error type: bad input that the user can fix, reported in one line."""

import os
import sys
from collections.abc import Callable

import torch
from lightning_fabric.utilities.rank_zero import rank_zero_only


class ConfigError(ValueError):
    """Bad input (env id, hyperparameter, preset, file). The message names the problem and the fix.

    `scripts/train.py` prints it as one line and exits with status 2.
    """


class TrainingFault(RuntimeError):
    """Training stopped by a fault it cannot go on from: an env that raised, a non-finite loss.

    The message names what failed, where (env step, gradient step) and the checkpoint to resume
    from. Scripts print it as one line and exit with status 1.
    """

    gradient_step: int | None = None  # for a NaN loss: its first update (orders faults across DDP ranks)


class TrainingInterrupted(TrainingFault):
    """Training stopped on Ctrl-C (SIGINT) or SIGTERM after writing a checkpoint; exit status 130."""


def exit_code(prog: str, run: Callable[[], object]) -> int:
    """Runs a script's work; known errors become one line on stderr and a non-zero status.

    `ConfigError` (bad input): 2. `TrainingFault`: 1. `TrainingInterrupted`: 130, as a shell
    reports a process stopped by Ctrl-C. Under DDP every rank raises the same fault (see
    `acting.interface`), so only rank 0 prints it.
    """
    try:
        run()
    except ConfigError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 130
    except TrainingFault as err:
        if _global_rank() == 0:
            print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    return 0


def _global_rank() -> int:
    """This process's rank over all nodes: torch.distributed's if started, else the launcher's
    `RANK` (torchrun), else Lightning's (LOCAL_RANK and NODE_RANK alone miss nodes > 0 under torchrun)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    return int(getattr(rank_zero_only, "rank", 0) or 0)
