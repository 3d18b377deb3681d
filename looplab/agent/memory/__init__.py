"""Memories, registered by `agent.memory.name`."""

from looplab.agent.memory import image_replay, onpolicy, prioritized, replay  # noqa: F401  (registers the memories)
from looplab.agent.memory.base import Memory, MemoryConfig

__all__ = ["Memory", "MemoryConfig"]
