"""Memories, registered by `agent.memory.name`: each module here registers its own (found on first lookup)."""

from looplab.agent.memory.base import MEMORIES, Memory, MemoryConfig, memory_class

__all__ = ["MEMORIES", "Memory", "MemoryConfig", "memory_class"]
