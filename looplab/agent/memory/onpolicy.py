"""On-policy memories: a flat batch of the last `training_frequency` vector steps."""

from __future__ import annotations

from typing import Any

import numpy as np

from looplab.agent.memory.base import Memory, MemoryConfig, action_spec, state_dtype
from looplab.registry import MEMORIES
from looplab.spec.schema import PositiveCount


class OnPolicyBatchReplayConfig(MemoryConfig):
    """The on-policy batch; SIL's second memory is configured alongside (`sil_replay_name` ...)."""

    sil_replay_name: str | None = None
    batch_size: PositiveCount | None = None
    max_size: PositiveCount | None = None
    use_cer: bool = False


@MEMORIES.register("OnPolicyBatchReplay")
class OnPolicyBatchReplay(Memory):
    """Preallocated [T, N, ...] arrays; ready after T = training_frequency vector steps; emptied on sample."""

    Config = OnPolicyBatchReplayConfig

    def __init__(self, config: MemoryConfig, env_info: Any, algorithm: Any):
        super().__init__(config, env_info, algorithm)
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
