"""REINFORCE's Monte Carlo returns at episode ends, against hand-computed values."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

from looplab.agent.algorithm.actor_critic import ActorCritic, ActorCriticConfig
from looplab.agent.algorithm.ppo import PPOConfig
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


def test_an_unknown_reset_is_refused():
    with pytest.raises(ValidationError, match="returns_reset_on"):
        ReinforceConfig(name="Reinforce", returns_reset_on="truncated")
    with pytest.raises(ValidationError, match="returns_reset_on"):
        ActorCriticConfig(name="ActorCritic", returns_reset_on="truncated")


def advantages(reset_on: str, v_next: np.ndarray | None = None, **estimator) -> list[float]:
    # one env, 3 steps, t1 truncated; V(s) = 0 and V(s') = 2 everywhere, gamma 0.5: every TD error is 1 + .5*2 = 2
    batch = {"rewards": np.ones((3, 1)), "terminateds": np.zeros((3, 1)), "truncateds": np.array([[0.0], [1.0], [0.0]])}
    cfg = ActorCriticConfig(name="ActorCritic", gamma=0.5, returns_reset_on=reset_on, **estimator)
    v = np.zeros((3, 1))
    v_next = np.full((3, 1), 2.0) if v_next is None else v_next
    return ActorCritic.advantages(SimpleNamespace(config=cfg, gamma=0.5), batch, v, v_next)[:, 0].tolist()


def test_gae_runs_through_a_truncation_by_default_as_slm_lab_and_restarts_there_when_asked():
    # lambda 1: A2 = 2; A1 = 2 + .5*A2 = 3 (no cut); A0 = 2 + .5*3 = 3.5. Cut at t1: A1 = 2, A0 = 2 + .5*2 = 3
    assert advantages("terminated", lam=1.0) == [3.5, 3.0, 2.0]
    assert advantages("done", lam=1.0) == [3.0, 2.0, 2.0]
    # the truncated step bootstraps from V(s') either way; a termination cuts and does not bootstrap in both
    assert PPOConfig.model_fields["returns_reset_on"].default == "terminated"


def test_n_step_windows_run_through_a_truncation_by_default_and_stop_there_when_asked():
    # V(s'_1) = 10 at the truncated step, 2 elsewhere; n = 3 covers the batch. Through: R2 = 1 + .5*2 = 2,
    # R1 = 1 + .5*R2 = 2, R0 = 1 + .5*R1 = 2. Stopped at t1: R1 = 1 + .5*10 = 6, R0 = 1 + .5*6 = 4
    v_next = np.array([[2.0], [10.0], [2.0]])
    assert advantages("terminated", v_next, num_step_returns=3) == [2.0, 2.0, 2.0]
    assert advantages("done", v_next, num_step_returns=3) == [4.0, 6.0, 2.0]
