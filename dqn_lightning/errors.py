"""The user-facing error type: bad input that the user can fix, reported in one line."""


class ConfigError(ValueError):
    """Bad input (env id, hyperparameter, preset, file). The message names the problem and the fix.

    `scripts/train.py` prints it as one line and exits with status 2.
    """
