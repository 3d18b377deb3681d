"""Algorithms, registered by `agent.algorithm.name`."""

from looplab.agent.algorithm import ppo  # noqa: F401  (registers PPO)
from looplab.agent.algorithm.base import Algorithm, AlgorithmConfig

__all__ = ["Algorithm", "AlgorithmConfig"]
