"""Learning checks: DQN (Double DQN) and A2C solve CartPole (100-episode mean return >= 195) on a short budget."""

from __future__ import annotations

import pytest

from looplab.experiment.run import prepare
from tests.agent.loop import make_agent, step
from tests.conftest import ROOT


def frames_to_solve(name: str, seed: int = 0) -> int | None:
    """Frames until the mean raw return of the last 100 episodes reaches 195 (None if never, within max_frame)."""
    _, spec, _ = prepare(str(ROOT / f"looplab/spec/library/{name}.json"), name, None, None)
    agent, env = make_agent(spec, seed)
    state = env.reset()
    try:
        while agent.clock.frame < spec.env.max_frame:
            state = step(agent, env, state)
            if len(env.returns) == 100 and env.total_reward >= 195.0:
                return agent.clock.frame
    finally:
        env.close()
    return None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["a2c_cartpole", "dqn_cartpole"])
def test_solves_cartpole(name):
    frame = frames_to_solve(name)
    assert frame is not None, f"{name} did not reach a 100-episode mean of 195"
