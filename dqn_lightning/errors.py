"""The user-facing error type: bad input that the user can fix, reported in one line."""

import sys
from collections.abc import Callable


class ConfigError(ValueError):
    """Bad input (env id, hyperparameter, preset, file). The message names the problem and the fix.

    `scripts/train.py` prints it as one line and exits with status 2.
    """


def exit_code(prog: str, run: Callable[[], object]) -> int:
    """Runs a script's work; a `ConfigError` becomes one line on stderr and exit status 2."""
    try:
        run()
    except ConfigError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    return 0
