"""The session loop's inner step, for tests that drive an agent directly (no run folder)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from looplab.agent.algorithm import ALGORITHMS
from looplab.env import Clock, Env


def make_agent(spec: Any, seed: int = 0) -> tuple[Any, Env]:
    """A seeded env and the spec's algorithm on it, with one torch thread (as a session process)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    env = Env(spec, seed)
    agent = ALGORITHMS.get(spec.algorithm.name)(spec, env.info, Clock(num_envs=env.num_envs))
    return agent, env


def step(agent: Any, env: Env, state: np.ndarray) -> np.ndarray:
    """act -> env.step -> agent.update -> clock.tick; returns the next state to act on."""
    action = agent.act(state)
    obs, reward, terminated, truncated, next_state = env.step(action)
    agent.update(state, action, reward, next_state, terminated, truncated)
    agent.clock.tick()
    return obs
