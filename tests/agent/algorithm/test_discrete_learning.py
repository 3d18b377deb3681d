"""Learning checks: DQN (Double DQN) and A2C solve CartPole (100-episode mean return >= 195) on a short budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from looplab.env import Clock, Env
from looplab.experiment.run import prepare
from looplab.registry import ALGORITHMS
from tests.conftest import ROOT


def frames_to_solve(name: str, seed: int = 0) -> int | None:
    """Frames until the mean raw return of the last 100 episodes reaches 195 (None if never, within max_frame)."""
    torch.set_num_threads(1)
    _, spec, _ = prepare(str(ROOT / f"looplab/spec/library/{name}.json"), name, None, None)
    torch.manual_seed(seed)
    np.random.seed(seed)
    env = Env(spec, seed)
    clock = Clock(num_envs=env.num_envs)
    agent = ALGORITHMS.get(spec.algorithm.name)(spec, env.info, clock)
    state = env.reset()
    try:
        while clock.frame < spec.env.max_frame:
            action = agent.act(state)
            obs, reward, terminated, truncated, next_state = env.step(action)
            agent.update(state, action, reward, next_state, terminated, truncated)
            state = obs
            clock.tick()
            if len(env.returns) == 100 and env.total_reward >= 195.0:
                return clock.frame
    finally:
        env.close()
    return None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["a2c_cartpole", "dqn_cartpole"])
def test_solves_cartpole(name):
    frame = frames_to_solve(name)
    assert frame is not None, f"{name} did not reach a 100-episode mean of 195"
