"""Algorithms, registered by `agent.algorithm.name`: each module here registers its own (found on first lookup)."""

from looplab.agent.algorithm.base import ALGORITHMS, Algorithm, AlgorithmConfig

__all__ = ["ALGORITHMS", "Algorithm", "AlgorithmConfig"]
