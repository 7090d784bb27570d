"""How many rounds of (env steps, updates) one Lightning batch carries (see `ReplayDataset`).

Rounds within a batch run exactly as one-round batches would, but everything Lightning or our
callbacks do at a batch's end (evaluation, periodic checkpoints, the log points, the budget
check under DDP) happens only at batch ends. So the batch must end at each env step where a
one-round run would have done one of them: the rounds of a batch must divide the env steps
between those events, counted from the end of the random fill.
"""

from __future__ import annotations

import math

from dqn_lightning.errors import ConfigError

MAX_WORK_PER_BATCH = 64
"""Auto rounds stop at this many env steps or updates per batch: beyond it the per-batch cost is
already under a few percent of the work, and a batch is the latency of Ctrl-C and the progress bar."""


def rounds_per_batch(
    *,
    given: int | None,
    env_steps_per_round: int,
    gradient_steps: int,
    fill_env_steps: int,
    intervals: list[int],
    episode_budget_under_ddp: bool = False,
) -> int:
    """The rounds per batch: `given` if it keeps every event at its env step, else a `ConfigError`
    naming one that does; None: the largest such count within `MAX_WORK_PER_BATCH`.

    Args:
        given: the user's choice (None: choose).
        env_steps_per_round: env steps a round adds over every env and process.
        gradient_steps: updates per round.
        fill_env_steps: the env-step count when the random fill ends and the first batch starts.
        intervals: env steps between batch-end events (evaluation, checkpoints, log points).
        episode_budget_under_ddp: an episode budget that the DDP ranks agree on only at batch
            ends: one round per batch keeps that stop where a one-round run makes it.
    """
    period = math.gcd(*intervals, fill_env_steps)  # batches must end on every multiple of this
    aligned = period % env_steps_per_round == 0 and not episode_budget_under_ddp
    most = period // env_steps_per_round if aligned else 1
    if given is not None:
        if given > 1 and most % given:
            fits = max(d for d in _divisors(most) if d <= given)
            raise ConfigError(
                f"--rounds-per-batch {given} would move evaluations, checkpoints or log points off their env "
                f"steps (each batch of {given * env_steps_per_round} env steps must end on every multiple of "
                f"{period}): use --rounds-per-batch {fits}, or leave it unset to choose"
            )
        return given
    cap = max(1, MAX_WORK_PER_BATCH // max(env_steps_per_round, gradient_steps))
    return max(d for d in _divisors(most) if d <= cap)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
