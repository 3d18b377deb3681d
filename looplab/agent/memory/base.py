"""Base of all memories: the `add` of a vector step and the `ready`/`sample` contract."""

from __future__ import annotations

from typing import Any

import numpy as np

from looplab.registry import Registry
from looplab.spec.schema import Strict

KEYS = ("states", "actions", "rewards", "next_states", "terminateds", "truncateds")

# memories, keyed by `agent.memory.name`; every module in this folder is looked at on first use
MEMORIES = Registry("memory", "agent.memory.name", package="looplab.agent.memory")


class MemoryConfig(Strict):
    name: str  # the memory (`looplab keys` lists them)


class Memory:
    """Stores vector-env transitions; `ready` says when the algorithm should train."""

    Config = MemoryConfig
    # True: state_dict(rows=False) leaves out the stored rows, which a checkpoint saves incrementally
    # from rows_since(mark) and restores with load_rows (see looplab.experiment.replay_store)
    incremental = False

    def __init__(self, config: MemoryConfig, env_info: Any, algorithm: Any, rng: np.random.Generator):
        self.config = config
        self.env_info = env_info
        self.num_envs = env_info.num_envs
        self.rng = rng  # what sampling draws from: the session's `replay` stream (looplab.agent.rng)

    def add(self, state: np.ndarray, action: np.ndarray, reward: np.ndarray, next_state: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray) -> None:
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        raise NotImplementedError

    def sample(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @classmethod
    def storage_for(cls, env_info: Any) -> type[Memory]:
        """The class that stores this memory's transitions for these env spaces (itself, by default)."""
        return cls

    @classmethod
    def estimate_nbytes(cls, config: MemoryConfig, env_info: Any, algorithm: Any) -> int:
        """Bytes this memory holds when full, from its config alone (checked before a run starts)."""
        return 0

    def state_dict(self, rows: bool = True) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass


def memory_class(name: str, env_info: Any) -> type[Memory]:
    """The memory class the spec's `memory.name` selects for these env spaces."""
    return MEMORIES.get(name).storage_for(env_info)


def state_dtype(env_info: Any, stored: str = "float32") -> np.dtype:
    """uint8 images stay uint8; other states are stored as `stored` (a replay's `state_dtype`)."""
    dt = getattr(env_info.observation_space, "dtype", np.float32)
    return np.dtype(np.uint8) if dt == np.uint8 else np.dtype(stored)


def transition_nbytes(env_info: Any, fields: tuple[str, ...] = KEYS, stored: str = "float32") -> int:
    """Bytes of one stored transition of these fields (states as `state_dtype`, scalars as float32)."""
    s_shape, s_dtype = env_info.state_shape, state_dtype(env_info, stored)
    a_shape, a_dtype = action_spec(env_info)
    sizes = {"states": int(np.prod(s_shape)) * s_dtype.itemsize, "next_states": int(np.prod(s_shape)) * s_dtype.itemsize,
             "actions": int(np.prod(a_shape)) * a_dtype.itemsize}
    return sum(sizes.get(k, 4) for k in fields)


def action_spec(env_info: Any) -> tuple[tuple[int, ...], np.dtype]:
    space = env_info.action_space
    if env_info.is_discrete:
        return (), np.dtype(np.int64)
    shape = tuple(space.shape)
    return shape, np.dtype(np.int64) if env_info.action_type in ("multi_discrete", "multi_binary") else np.dtype(
        np.float32)
