"""On-policy memories: a flat batch of the last `training_frequency` vector steps."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import model_validator

from looplab.agent.memory.base import (
    MEMORIES,
    Memory,
    MemoryConfig,
    action_spec,
    memory_class,
    state_dtype,
    transition_nbytes,
)
from looplab.agent.memory.replay import ReplayConfig
from looplab.spec.schema import PositiveCount


class SILMemoryKeys(MemoryConfig):
    """SIL's second memory, configured alongside the on-policy one (`sil_replay_name`, `batch_size`, ...)."""

    sil_replay_name: str | None = None
    batch_size: PositiveCount | None = None
    max_size: PositiveCount | None = None
    use_cer: bool = False

    @model_validator(mode="after")
    def _batch_fits(self) -> SILMemoryKeys:
        if self.batch_size is not None and self.max_size is not None and self.batch_size > self.max_size:
            raise ValueError(f"batch_size ({self.batch_size}) is larger than the SIL replay itself (max_size "
                             f"{self.max_size})")
        return self


class OnPolicyBatchReplayConfig(SILMemoryKeys):
    """The on-policy batch of the last T vector steps."""


@MEMORIES.register("OnPolicyBatchReplay")
class OnPolicyBatchReplay(Memory):
    """Preallocated [T, N, ...] arrays; ready after T = training_frequency vector steps; emptied on sample."""

    Config = OnPolicyBatchReplayConfig

    @classmethod
    def estimate_nbytes(cls, config: OnPolicyBatchReplayConfig, env_info: Any, algorithm: Any) -> int:
        # `algorithm` is the algorithm's config here: the batch is T vector steps (see the algorithms)
        steps = (getattr(algorithm, "time_horizon", None) or getattr(algorithm, "training_frequency", None)
                 or getattr(algorithm, "num_step_returns", None) or 1)
        own = int(steps) * env_info.num_envs * transition_nbytes(env_info)
        if config.sil_replay_name and config.max_size and config.batch_size:  # SIL's own replay
            replay = memory_class(config.sil_replay_name, env_info)
            own += replay.estimate_nbytes(ReplayConfig(name=config.sil_replay_name, batch_size=config.batch_size,
                                                       max_size=config.max_size), env_info, algorithm)
        return own

    def __init__(self, config: MemoryConfig, env_info: Any, algorithm: Any, rng: np.random.Generator):
        super().__init__(config, env_info, algorithm, rng)
        self.size = int(algorithm.training_frequency)
        T, N = self.size, self.num_envs
        shape = env_info.state_shape
        a_shape, a_dtype = action_spec(env_info)
        s_dtype = state_dtype(env_info)
        self.states = np.zeros((T, N, *shape), dtype=s_dtype)
        self.next_states = np.zeros((T, N, *shape), dtype=s_dtype)
        self.actions = np.zeros((T, N, *a_shape), dtype=a_dtype)
        self.rewards = np.zeros((T, N), dtype=np.float32)
        self.terminateds = np.zeros((T, N), dtype=np.float32)
        self.truncateds = np.zeros((T, N), dtype=np.float32)
        self.head = 0

    def add(self, state, action, reward, next_state, terminated, truncated) -> None:
        i = self.head
        self.states[i] = state
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_states[i] = next_state
        self.terminateds[i] = terminated
        self.truncateds[i] = truncated
        self.head += 1

    @property
    def ready(self) -> bool:
        return self.head >= self.size

    def sample(self) -> dict[str, np.ndarray]:
        n = self.head
        batch = {
            "states": self.states[:n], "actions": self.actions[:n], "rewards": self.rewards[:n],
            "next_states": self.next_states[:n], "terminateds": self.terminateds[:n],
            "truncateds": self.truncateds[:n],
        }
        self.head = 0
        return batch

    def state_dict(self) -> dict:
        n = self.head
        return {"head": n, **{k: getattr(self, k)[:n].copy() for k in
                              ("states", "actions", "rewards", "next_states", "terminateds", "truncateds")}}

    def load_state_dict(self, d: dict) -> None:
        n = int(d["head"])
        for k in ("states", "actions", "rewards", "next_states", "terminateds", "truncateds"):
            getattr(self, k)[:n] = d[k]
        self.head = n


class OnPolicyReplayConfig(SILMemoryKeys):
    """Whole episodes."""


@MEMORIES.register("OnPolicyReplay")
class OnPolicyReplay(Memory):
    """Episodic: whole episodes, ready after `training_frequency` finished episodes, emptied on sample.

    Works with vector envs: each env fills its own preallocated episode buffer (grown by doubling);
    a finished episode is moved to the completed list. `sample()` concatenates the completed episodes
    into [T, 1] arrays whose episode ends carry terminated/truncated flags, as the return estimators expect.
    """

    Config = OnPolicyReplayConfig
    keys = ("states", "actions", "rewards", "next_states", "terminateds", "truncateds")

    def __init__(self, config: MemoryConfig, env_info: Any, algorithm: Any, rng: np.random.Generator):
        super().__init__(config, env_info, algorithm, rng)
        self.training_frequency = int(getattr(algorithm, "training_frequency", None) or 1)
        s_shape, s_dtype = env_info.state_shape, state_dtype(env_info)
        a_shape, a_dtype = action_spec(env_info)
        self.specs = {"states": (s_shape, s_dtype), "next_states": (s_shape, s_dtype), "actions": (a_shape, a_dtype),
                      "rewards": ((), np.float32), "terminateds": ((), np.float32), "truncateds": ((), np.float32)}
        self.capacity = 256
        self.bufs = {k: np.zeros((self.capacity, self.num_envs, *shape), dtype=dt) for k, (shape, dt) in
                     self.specs.items()}
        self.lengths = np.zeros(self.num_envs, dtype=np.int64)
        self.envs = np.arange(self.num_envs)
        self.episodes: list[dict[str, np.ndarray]] = []

    def add(self, state, action, reward, next_state, terminated, truncated) -> None:
        if self.lengths.max() >= self.capacity:
            self.bufs = {k: np.concatenate([b, np.zeros_like(b)]) for k, b in self.bufs.items()}
            self.capacity *= 2
        t = self.lengths
        for k, v in zip(self.keys, (state, action, reward, next_state, terminated, truncated), strict=True):
            self.bufs[k][t, self.envs] = v
        self.lengths += 1
        done = np.logical_or(terminated, truncated)
        if done.any():
            for i in np.flatnonzero(done):
                n = self.lengths[i]
                self.episodes.append({k: b[:n, i].copy() for k, b in self.bufs.items()})
                self.lengths[i] = 0

    @property
    def ready(self) -> bool:
        return len(self.episodes) >= self.training_frequency

    def select(self, episodes: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        return episodes

    def sample(self) -> dict[str, np.ndarray]:
        eps = self.select(self.episodes)
        self.episodes = []
        return {k: np.concatenate([e[k] for e in eps])[:, None] for k in self.keys}

    def state_dict(self) -> dict:
        return {"episodes": [dict(e) for e in self.episodes], "lengths": self.lengths.copy(),
                "partial": {k: b[:int(self.lengths.max(initial=0))].copy() for k, b in self.bufs.items()}}

    def load_state_dict(self, d: dict) -> None:
        self.episodes = list(d["episodes"])
        self.lengths = np.asarray(d["lengths"]).copy()
        n = int(self.lengths.max(initial=0))
        while n > self.capacity:
            self.bufs = {k: np.concatenate([b, np.zeros_like(b)]) for k, b in self.bufs.items()}
            self.capacity *= 2
        for k, b in self.bufs.items():
            b[:n] = d["partial"][k]


class OnPolicyCrossEntropyConfig(MemoryConfig):
    cross_entropy: float = 1.0


@MEMORIES.register("OnPolicyCrossEntropy")
class OnPolicyCrossEntropy(OnPolicyReplay):
    """Episodic, training only on the best `cross_entropy` fraction of episodes by return."""

    Config = OnPolicyCrossEntropyConfig

    def select(self, episodes: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        frac = float(self.config.cross_entropy)
        if frac >= 1.0 or len(episodes) < 2:
            return episodes
        returns = np.array([e["rewards"].sum() for e in episodes])
        cut = np.quantile(returns, 1.0 - frac)
        return [e for e, r in zip(episodes, returns, strict=True) if r >= cut]
