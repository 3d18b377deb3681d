"""Prioritized experience replay (Schaul et al. 2016), proportional variant on a sum tree.

P(i) = p_i / sum p, with p_i = (|TD error| + epsilon)^alpha once item i was trained on. By default it
does what SLM Lab's PrioritizedReplay does, which differs from the paper; each difference is a key:

- `new_priority`: `slm_lab` (default) gives every new transition (100000 + epsilon)^alpha (about 1000 at
  alpha 0.6), so that new items are drawn before nearly all others; `max` gives it the largest
  priority so far (the paper).
- `sampling`: `iid` (default) draws each index independently in proportion to priority; `stratified`
  draws one index from each of batch_size equal slices of the total priority (the paper).
- `importance_weights`: false (default) trains on the plain mean loss; true weights each item by
  w_i = (n P(i))^-beta / max w, beta annealed linearly from `beta` to 1 at `beta_end_step` frames
  (default: env.max_frame), as the paper does.
- `cer_update`: with `use_cer`, whether the TD errors of the new transitions CER put into a batch
  update their priorities; false (default) leaves them at their new-item priority.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import model_validator

from looplab.agent.memory.base import MEMORIES
from looplab.agent.memory.replay import Replay, ReplayConfig
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
        # level by level up to the root; a parent listed twice gets the same sum twice, so no dedup is needed
        for _ in range(self.leaves.bit_length() - 1):
            nodes = nodes >> 1
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]

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


# SLM Lab adds each transition with the TD error 100000 in place of a measured one
SLM_LAB_NEW_ERROR = 100000.0


class PrioritizedReplayConfig(ReplayConfig):
    alpha: Prob = 0.6  # priority = (|TD error| + epsilon)^alpha
    epsilon: float = 1e-4
    new_priority: Literal["slm_lab", "max"] = "slm_lab"  # a new item's: (1e5 + epsilon)^alpha, or the largest so far
    sampling: Literal["iid", "stratified"] = "iid"  # independent draws, or one per equal slice of the total
    importance_weights: bool = False  # weight each item's loss by (n P(i))^-beta / max w (the paper)
    beta: Prob | None = None  # the weights' exponent at frame 0, annealed to 1; None: 0.4
    beta_end_step: NonNegCount | None = None  # the frame where beta reaches 1; None: env.max_frame
    cer_update: bool = False  # with use_cer: the new items' TD errors update their priorities

    @model_validator(mode="after")
    def _beta_needs_weights(self) -> PrioritizedReplayConfig:
        if not self.importance_weights:
            for key in ("beta", "beta_end_step"):
                if getattr(self, key) is not None:
                    raise ValueError(f"'{key}' anneals importance weights; it needs importance_weights: true")
        return self


@MEMORIES.register("PrioritizedReplay")
class PrioritizedReplay(Replay):
    Config = PrioritizedReplayConfig

    @classmethod
    def estimate_nbytes(cls, config: PrioritizedReplayConfig, env_info: Any, algorithm: Any) -> int:
        # + the sum tree: at most 2 * 2 float64 nodes per slot (leaves padded to a power of two)
        return super().estimate_nbytes(config, env_info, algorithm) + 32 * max(int(config.max_size), env_info.num_envs)

    def __init__(self, config: PrioritizedReplayConfig, env_info: Any, algorithm: Any, rng: np.random.Generator):
        super().__init__(config, env_info, algorithm, rng)
        self.alpha, self.epsilon = config.alpha, config.epsilon
        self.new_priority, self.sampling = config.new_priority, config.sampling
        self.importance_weights, self.cer_update = config.importance_weights, config.cer_update
        self.beta_start = config.beta if config.beta is not None else 0.4
        spec = getattr(algorithm, "spec", None)
        self.beta_end_step = config.beta_end_step if config.beta_end_step is not None else (
            spec.env.max_frame if spec is not None else 1)
        self.clock = getattr(algorithm, "clock", None)
        self.tree = SumTree(self.max_size)
        self.max_priority = 1.0
        self.num_cer = 0  # CER slots at the end of the last sampled batch
        self.slm_lab_priority = self.priority(np.array([SLM_LAB_NEW_ERROR]))[0]

    def priority(self, errors: np.ndarray) -> np.ndarray:
        return (np.abs(errors) + self.epsilon) ** self.alpha

    @property
    def beta(self) -> float:
        frame = self.clock.frame if self.clock is not None else 0
        frac = min(1.0, frame / self.beta_end_step) if self.beta_end_step > 0 else 1.0
        return self.beta_start + frac * (1.0 - self.beta_start)

    def write(self, idx: np.ndarray, **step: np.ndarray) -> None:
        super().write(idx, **step)
        new = self.slm_lab_priority if self.new_priority == "slm_lab" else self.max_priority
        self.tree.update(idx, np.full(len(idx), new))

    def sample_indices(self, batch_size: int) -> np.ndarray:
        total = self.tree.total
        u = self.rng.random(batch_size)
        if self.sampling == "stratified":
            u = (np.arange(batch_size) + u) / batch_size
        values = np.minimum(u * total, np.nextafter(total, 0))
        idx = np.minimum(self.tree.find(values), self.size - 1)
        self.num_cer = self.apply_cer(idx)
        return idx

    def sample(self, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """A batch; `priority_indices` are the slots whose priorities its TD errors update (-1: none)."""
        batch = super().sample(batch_size)
        idx = batch["indices"]
        priority_idx = idx.copy()
        if self.num_cer and not self.cer_update:
            priority_idx[len(idx) - self.num_cer:] = -1
        batch["priority_indices"] = priority_idx
        if self.importance_weights:
            probs = self.tree.get(idx) / self.tree.total
            w = (self.size * probs) ** -self.beta
            batch["weights"] = (w / w.max()).astype(np.float32)
        return batch

    def update_priorities(self, idx: np.ndarray, errors: np.ndarray) -> None:
        """Priorities (|error| + epsilon)^alpha for slots `idx`; slots given as -1 are left alone."""
        keep = idx >= 0
        if not keep.any():
            return
        p = self.priority(errors[keep])
        self.tree.update(idx[keep], p)
        self.max_priority = max(self.max_priority, float(p.max()))

    def state_dict(self, rows: bool = True) -> dict:
        # priorities change anywhere on replay, so the tree is saved whole even when rows are saved incrementally
        return {**super().state_dict(rows), "tree": self.tree.tree.copy(), "max_priority": self.max_priority}

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self.tree.tree[:] = d["tree"]
        self.max_priority = float(d["max_priority"])
