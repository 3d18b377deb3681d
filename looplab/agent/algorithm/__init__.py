"""Algorithms, registered by `agent.algorithm.name`."""

from looplab.agent.algorithm import (  # noqa: F401  (registers the algorithms)
    actor_critic,
    crossq,
    dqn,
    ppo,
    random,
    reinforce,
    sac,
    sarsa,
    sil,
)
from looplab.agent.algorithm.base import Algorithm, AlgorithmConfig

__all__ = ["Algorithm", "AlgorithmConfig"]
