"""REINFORCE's Monte Carlo returns at episode ends, against hand-computed values."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

from looplab.agent.algorithm.actor_critic import ActorCriticConfig
from looplab.agent.algorithm.reinforce import Reinforce, ReinforceConfig


def returns(reset_on: str, center: bool = False) -> list[float]:
    # one env, 4 steps: t1 is truncated (time limit), t3 terminates
    batch = {"rewards": np.array([[1.0], [1.0], [1.0], [1.0]]),
             "terminateds": np.array([[0.0], [0.0], [0.0], [1.0]]),
             "truncateds": np.array([[0.0], [1.0], [0.0], [0.0]])}
    cfg = ReinforceConfig(name="Reinforce", gamma=0.5, returns_reset_on=reset_on, center_return=center)
    return Reinforce.returns(SimpleNamespace(config=cfg, gamma=0.5), batch)[:, 0].tolist()


def test_returns_run_through_a_truncation_by_default_as_slm_lab():
    # R3 = 1; R2 = 1 + .5*1 = 1.5; R1 = 1 + .5*1.5 = 1.75 (the truncation does not cut); R0 = 1 + .5*1.75
    assert returns("terminated") == [1.875, 1.75, 1.5, 1.0]


def test_returns_restart_at_a_truncation_when_asked():
    # R1 = 1 (cut at the truncation, no bootstrap); R0 = 1.5; R3 = 1; R2 = 1.5
    assert returns("done") == [1.5, 1.0, 1.5, 1.0]
    assert returns("done", center=True) == pytest.approx([0.25, -0.25, 0.25, -0.25])


def test_an_unknown_reset_and_the_key_on_an_actor_critic_are_refused():
    with pytest.raises(ValidationError, match="returns_reset_on"):
        ReinforceConfig(name="Reinforce", returns_reset_on="truncated")
    with pytest.raises(ValidationError, match="returns_reset_on"):  # A2C bootstraps from V instead
        ActorCriticConfig(name="ActorCritic", returns_reset_on="done")
