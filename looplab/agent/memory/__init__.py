"""Memories, registered by `agent.memory.name`: each module here registers its own (found on first lookup)."""

from looplab.agent.memory.base import MEMORIES, Memory, MemoryConfig

__all__ = ["MEMORIES", "Memory", "MemoryConfig"]
