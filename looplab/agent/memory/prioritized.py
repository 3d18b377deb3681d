"""Prioritized experience replay (Schaul et al. 2016), proportional variant on a sum tree.

P(i) = p_i / sum p, p_i = (|TD error| + epsilon)^alpha; new transitions get the largest priority so far.
Batches are stratified over the total priority. Importance-sampling weights w_i = (n P(i))^-beta / max w
(which SLM Lab omits) correct the bias; beta anneals linearly from `beta` to 1 at `beta_end_step` frames
(default: env.max_frame).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from looplab.agent.memory.replay import Replay, ReplayConfig
from looplab.registry import MEMORIES
from looplab.spec.schema import NonNegCount, Prob


class SumTree:
    """Binary tree over `capacity` leaves whose nodes hold the sum of their children; vectorized ops."""

    def __init__(self, capacity: int):
        self.leaves = 1 << max(0, int(capacity - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)  # node k has children 2k, 2k+1; root 1

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def update(self, idx: np.ndarray, values: np.ndarray) -> None:
        nodes = np.asarray(idx) + self.leaves
        self.tree[nodes] = values
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            nodes = np.unique(nodes // 2)
            if nodes[0] == 0:
                break

    def get(self, idx: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(idx) + self.leaves]

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf index for each prefix-sum value in [0, total)."""
        nodes = np.ones(len(values), dtype=np.int64)
        v = np.asarray(values, dtype=np.float64).copy()
        while nodes[0] < self.leaves:
            left = 2 * nodes
            left_sum = self.tree[left]
            go_right = v >= left_sum
            v = np.where(go_right, v - left_sum, v)
            nodes = np.where(go_right, left + 1, left)
        return nodes - self.leaves


class PrioritizedReplayConfig(ReplayConfig):
    alpha: Prob = 0.6
    epsilon: float = 1e-4
    beta: Prob = 0.4
    beta_end_step: NonNegCount | None = None


@MEMORIES.register("PrioritizedReplay")
class PrioritizedReplay(Replay):
    Config = PrioritizedReplayConfig

    def __init__(self, config: PrioritizedReplayConfig, env_info: Any, algorithm: Any):
        super().__init__(config, env_info, algorithm)
        self.alpha, self.epsilon = config.alpha, config.epsilon
        self.beta_start = config.beta
        spec = getattr(algorithm, "spec", None)
        self.beta_end_step = config.beta_end_step if config.beta_end_step is not None else (
            spec.env.max_frame if spec is not None else 1)
        self.clock = getattr(algorithm, "clock", None)
        self.tree = SumTree(self.max_size)
        self.max_priority = 1.0

    @property
    def beta(self) -> float:
        frame = self.clock.frame if self.clock is not None else 0
        frac = min(1.0, frame / self.beta_end_step) if self.beta_end_step > 0 else 1.0
        return self.beta_start + frac * (1.0 - self.beta_start)

    def write(self, idx: np.ndarray, **step: np.ndarray) -> None:
        super().write(idx, **step)
        self.tree.update(idx, np.full(len(idx), self.max_priority))

    def sample_indices(self, batch_size: int) -> np.ndarray:
        total = self.tree.total
        bounds = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
        idx = np.minimum(self.tree.find(np.minimum(bounds, np.nextafter(total, 0))), self.size - 1)
        if self.use_cer:
            k = min(len(self.latest), batch_size)
            idx[batch_size - k:] = self.latest[:k]
        return idx

    def sample(self, batch_size: int | None = None) -> dict[str, np.ndarray]:
        batch = super().sample(batch_size)
        probs = self.tree.get(batch["indices"]) / self.tree.total
        w = (self.size * probs) ** -self.beta
        batch["weights"] = (w / w.max()).astype(np.float32)
        return batch

    def update_priorities(self, idx: np.ndarray, errors: np.ndarray) -> None:
        p = (np.abs(errors) + self.epsilon) ** self.alpha
        self.tree.update(idx, p)
        self.max_priority = max(self.max_priority, float(p.max()))

    def state_dict(self, rows: bool = True) -> dict:
        # priorities change anywhere on replay, so the tree is saved whole even when rows are saved incrementally
        return {**super().state_dict(rows), "tree": self.tree.tree.copy(), "max_priority": self.max_priority}

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self.tree.tree[:] = d["tree"]
        self.max_priority = float(d["max_priority"])
