"""Property test: the ring buffer behaves like a list that keeps only the newest `capacity` items."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dqn_lightning import ReplayBuffer


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 12), chunks=st.lists(st.integers(1, 7), max_size=12))
def test_ring_matches_a_list_model(capacity: int, chunks: list[int]) -> None:
    buffer = ReplayBuffer(capacity, obs_shape=(1,), seed=0)
    model: list[int] = []  # every value ever added, in order
    counter = 0
    for n in chunks:
        if n > capacity:
            continue  # one add never holds more than the ring
        values = np.arange(counter, counter + n)
        counter += n
        buffer.add(values[:, None], values % 3, values.astype(np.float32), values[:, None] + 0.5, values % 2)
        model.extend(values.tolist())
        kept = model[-capacity:]
        assert len(buffer) == len(kept)
        stored = buffer.obs[: len(buffer), 0].astype(int).tolist()
        assert sorted(stored) == sorted(kept)  # the newest `capacity` values, the oldest overwritten
        # the next write goes to the slot of the oldest kept value (once full)
        if len(kept) == capacity:
            assert int(buffer.obs[buffer.pos, 0]) == kept[0]
        assert np.array_equal(buffer.next_obs[: len(buffer), 0], buffer.obs[: len(buffer), 0] + 0.5)
        assert np.array_equal(buffer.action[: len(buffer)], buffer.obs[: len(buffer), 0].astype(int) % 3)
        batch = buffer.sample(len(buffer))
        assert sorted(batch.obs[:, 0].int().tolist()) == sorted(kept)
