"""A sum tree over priorities: batched updates and batched prefix-sum sampling, no per-item Python loop."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


class SumTree:
    """Binary tree in one array whose leaves hold priorities and whose inner nodes hold sums.

    Node 1 is the root, node i has children 2i and 2i+1, and leaf j sits at `leaves + j`
    (`leaves` is the capacity rounded up to a power of two). Both operations below work
    level by level on whole batches: O(batch * log capacity) NumPy work in log capacity calls.

    Args:
        capacity: number of leaves that can hold a priority.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"sum tree capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.leaves = 1 << max(0, (capacity - 1).bit_length())
        self.nodes = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all priorities."""
        return float(self.nodes[1])

    def get(self, index: ArrayLike) -> np.ndarray:
        """Priorities of leaves `index`."""
        return self.nodes[self.leaves + np.asarray(index)]

    def set(self, index: ArrayLike, priority: ArrayLike) -> None:
        """Sets leaves `index` to `priority` and recomputes the sums above them.

        A leaf named twice keeps the last value given (NumPy fancy assignment order).
        """
        node = self.leaves + np.asarray(index, dtype=np.int64).ravel()
        self.nodes[node] = np.asarray(priority, dtype=np.float64).ravel()
        # a parent named twice (siblings, or a repeated leaf) gets the same sum twice: cheaper than
        # np.unique's sort on every level (32 leaves of a 100k tree: about 60-95 us against 140-150)
        node = node // 2
        while node[0] >= 1:
            self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1]
            node //= 2

    def find(self, mass: ArrayLike) -> np.ndarray:
        """For each `mass` in [0, total): the leaf where the running sum of priorities passes it.

        So a uniform `mass` picks leaf j with probability priority_j / total.
        """
        mass = np.array(mass, dtype=np.float64)
        node = np.ones(mass.shape, dtype=np.int64)
        while node.flat[0] < self.leaves:  # every query descends one level per pass
            left = self.nodes[2 * node]
            # never into an empty subtree: rounding could otherwise pass the last positive leaf
            go_right = (mass >= left) & (self.nodes[2 * node + 1] > 0)
            mass -= np.where(go_right, left, 0.0)
            node = 2 * node + go_right
        return node - self.leaves

    def rebuild(self) -> None:
        """Recomputes every inner sum from the leaves (after the leaves were written directly)."""
        start = self.leaves // 2
        while start >= 1:
            children = self.nodes[2 * start : 4 * start]
            self.nodes[start : 2 * start] = children[0::2] + children[1::2]
            start //= 2
