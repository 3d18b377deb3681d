"""IQM and the stratified bootstrap interval against hand-computed values and known truths."""

from __future__ import annotations

import numpy as np
import pytest

from looplab.analysis.statistics import bootstrap_ci, iqm


def test_iqm_hand_computed():
    # 8 values: int(8/4)=2 trimmed from each end -> mean(3, 4, 5, 100) ... sorted: 1 2 3 4 5 6 100 200
    assert iqm([200, 1, 5, 3, 100, 2, 6, 4]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    # 5 values: int(1.25)=1 trimmed each end -> mean(2, 3, 4)
    assert iqm([1, 2, 3, 4, 1000]) == pytest.approx(3.0)
    # fewer than 4 values: nothing trimmed
    assert iqm([1.0, 2.0, 6.0]) == pytest.approx(3.0)
    assert iqm([7.0]) == 7.0


def test_iqm_per_row():
    m = np.array([[1, 2, 3, 4], [10, 20, 30, 40]], dtype=float)
    np.testing.assert_allclose(iqm(m, axis=1), [2.5, 25.0])


def test_bootstrap_ci_contains_truth_and_is_seeded():
    rng = np.random.default_rng(0)
    x = rng.normal(loc=5.0, scale=1.0, size=60)
    lo, hi = bootstrap_ci(x, reps=2000)
    assert lo < 5.0 < hi  # the true IQM of N(5, 1) is 5
    assert hi - lo < 1.0  # and the interval is informative
    assert bootstrap_ci(x) == bootstrap_ci(x)


def test_bootstrap_ci_coverage_is_about_95_percent():
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(200):
        lo, hi = bootstrap_ci(rng.normal(size=40), stat=np.mean, reps=500, seed=int(rng.integers(1 << 30)))
        hits += lo <= 0.0 <= hi
    assert 0.88 <= hits / 200 <= 0.99


def test_bootstrap_ci_stratified_resamples_within_tasks():
    # two tasks on very different scales: resampling within each task keeps every bootstrap sample half
    # task-0 and half task-1, so the mean's interval is narrow; pooling them would make it wide
    runs = np.stack([np.full(10, 0.0) + np.linspace(-0.1, 0.1, 10), np.full(10, 100.0)], axis=1)
    lo, hi = bootstrap_ci(runs, stat=np.mean)
    assert 49.9 < lo <= hi < 50.1


def test_bootstrap_ci_degenerate():
    assert bootstrap_ci([3.5]) == (3.5, 3.5)
    lo, hi = bootstrap_ci([])
    assert np.isnan(lo) and np.isnan(hi)
