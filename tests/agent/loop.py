"""An agent and env built as a session builds them, and the session's own loop step, for tests that drive an
agent directly (no run folder)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from looplab.agent.algorithm import ALGORITHMS
from looplab.env import Clock, Env
from looplab.experiment.session import step as session_step


def make_agent(spec: Any, seed: int = 0) -> tuple[Any, Env]:
    """A seeded env and the spec's algorithm on it, with one torch thread (as a session process)."""
    torch.set_num_threads(1)
    env = Env(spec, seed)
    agent = ALGORITHMS.get(spec.algorithm.name)(spec, env.info, Clock(num_envs=env.num_envs), seed)
    return agent, env


def step(agent: Any, env: Env, state: np.ndarray) -> np.ndarray:
    """`looplab.experiment.session.step` with the agent's clock; returns the next state to act on."""
    return session_step(agent, env, agent.clock, state)
