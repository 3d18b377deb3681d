"""Returns and GAE against hand-computed values, with terminated vs truncated steps."""

import numpy as np
import pytest

from looplab.agent.math import discounted_returns, gae, nstep_returns


def col(*xs):
    return np.array(xs, dtype=float)[:, None]


def test_discounted_returns_resets_on_terminated():
    r = col(1, 1, 1, 1)
    term = col(0, 1, 0, 0)
    ret = discounted_returns(r, term, term, gamma=0.5)
    # t1 terminates: R1 = 1; R0 = 1 + .5*1 = 1.5; tail R3 = 1, R2 = 1 + .5 = 1.5
    assert ret[:, 0].tolist() == [1.5, 1.0, 1.5, 1.0]


def test_discounted_returns_truncated_bootstraps_from_next_value():
    r = col(1, 1, 1)
    term = col(0, 0, 0)
    done = col(0, 1, 0)  # t1 truncated: the episode stops but the state was not terminal
    nv = col(10, 4, 8)
    ret = discounted_returns(r, term, done, gamma=0.5, next_values=nv)
    # R2 = 1 + .5*8 = 5 ; R1 = 1 + .5*V(s'_1)=1+2=3 ; R0 = 1 + .5*3 = 2.5
    assert ret[:, 0].tolist() == pytest.approx([2.5, 3.0, 5.0])


def test_gae_matches_hand_computation():
    gamma, lam = 0.9, 0.5
    r = col(1.0, 0.0, 2.0)
    v = col(0.5, 1.0, 1.5)
    nv = col(1.0, 1.5, 3.0)
    term = col(0, 0, 0)
    done = col(0, 0, 0)
    adv = gae(r, v, nv, term, done, gamma, lam)
    d2 = 2.0 + 0.9 * 3.0 - 1.5
    d1 = 0.0 + 0.9 * 1.5 - 1.0
    d0 = 1.0 + 0.9 * 1.0 - 0.5
    a2 = d2
    a1 = d1 + 0.45 * a2
    a0 = d0 + 0.45 * a1
    assert adv[:, 0] == pytest.approx([a0, a1, a2])


def test_gae_terminated_vs_truncated():
    gamma, lam = 0.9, 0.5
    r = col(1.0, 1.0)
    v = col(0.0, 0.0)
    nv = col(2.0, 2.0)
    # terminated at t0: no bootstrap from V(s'_0) and no carry from t1
    adv_term = gae(r, v, nv, col(1, 0), col(1, 0), gamma, lam)
    assert adv_term[0, 0] == pytest.approx(1.0)
    # truncated at t0: bootstrap from V(s'_0) = 2 but no carry from t1
    adv_trunc = gae(r, v, nv, col(0, 0), col(1, 0), gamma, lam)
    assert adv_trunc[0, 0] == pytest.approx(1.0 + 0.9 * 2.0)
    assert adv_trunc[1, 0] == adv_term[1, 0] == pytest.approx(1.0 + 0.9 * 2.0)


def test_gae_vectorized_over_envs_equals_per_env():
    rng = np.random.default_rng(0)
    T, N = 7, 3
    r, v, nv = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=(T, N))
    term = (rng.random((T, N)) < 0.2).astype(float)
    done = np.maximum(term, (rng.random((T, N)) < 0.1).astype(float))
    full = gae(r, v, nv, term, done, 0.99, 0.95)
    for i in range(N):
        sl = slice(i, i + 1)
        assert np.allclose(full[:, sl], gae(r[:, sl], v[:, sl], nv[:, sl], term[:, sl], done[:, sl], 0.99, 0.95))


def test_gae_lambda_one_equals_returns_minus_values():
    rng = np.random.default_rng(1)
    T = 6
    r, v = rng.normal(size=(T, 1)), rng.normal(size=(T, 1))
    nv = np.vstack([v[1:], [[0.7]]])
    term = np.zeros((T, 1))
    done = np.zeros((T, 1))
    adv = gae(r, v, nv, term, done, 0.9, 1.0)
    ret = discounted_returns(r, term, done, 0.9, next_values=nv)
    assert np.allclose(adv, ret - v)


def test_nstep_returns_two_steps():
    gamma = 0.5
    r = col(1, 2, 3, 4)
    nv = col(10, 20, 30, 40)
    term = col(0, 0, 1, 0)
    done = col(0, 0, 1, 0)
    ret = nstep_returns(r, term, done, nv, gamma, n=2)
    # t0: 1 + .5*2 + .25*V(s'_1)=20 -> 7 ; t1: 2 + .5*3 (terminated, no bootstrap) = 3.5
    # t2: 3 (terminated) ; t3: 4 + .5*40 (end of batch) = 24
    assert ret[:, 0].tolist() == pytest.approx([7.0, 3.5, 3.0, 24.0])
