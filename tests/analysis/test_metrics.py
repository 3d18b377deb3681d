"""SLM Lab's session and trial metric formulas (reference §5) against hand-computed values, and their
definitions for strengths below the random baseline (negative and mixed signs)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from looplab.analysis.metrics import consistency, efficiency, session_metrics, stability, trial_metrics

# R = total_reward per checkpoint, R_rand = 10 -> str = [0, 20, 10, 30]
DF = pd.DataFrame({"frame": [100, 200, 300, 400], "opt_step": [0, 5, 10, 20],
                   "total_reward": [10.0, 30.0, 20.0, 40.0]})


def test_session_metrics_hand_computed():
    m = session_metrics(DF, random_baseline=10.0)["scalar"]
    assert m["frame"] == 400
    assert m["total_reward_ma"] == pytest.approx(25.0)
    assert m["strength"] == pytest.approx(15.0)
    assert m["max_strength"] == pytest.approx(30.0)
    assert m["final_strength"] == pytest.approx(30.0)
    # (0/100 + 20/200 + 10/300 + 30/400) / 60
    assert m["sample_efficiency"] == pytest.approx((0.1 + 1 / 30 + 0.075) / 60)
    # opt_step 0 dropped from the numerator: (20/5 + 10/10 + 30/20) / 60
    assert m["training_efficiency"] == pytest.approx(6.5 / 60)
    # one drop of 10 over sum(str[:-1]) = 30
    assert m["stability"] == pytest.approx(1 - 10 / 30)


def test_session_metrics_local_series_end_at_scalars():
    out = session_metrics(DF, 10.0)
    assert out["local"]["strength"] == [0.0, 20.0, 10.0, 30.0]
    assert out["local"]["sample_efficiency"][-1] == pytest.approx(out["scalar"]["sample_efficiency"])


def test_stability_is_one_without_drops():
    df = DF.assign(total_reward=[10.0, 20.0, 30.0, 40.0])
    assert session_metrics(df, 0.0)["scalar"]["stability"] == pytest.approx(1.0)


def test_consistency_hand_computed():
    s1, s2 = np.array([0, 20, 10, 30.0]), np.array([10, 20, 30, 30.0])
    # sample std of a pair = |a-b|/sqrt(2): sum = 30/sqrt(2); sum of means = 75
    assert consistency([s1, s2]) == pytest.approx(1 - 2 * (30 / math.sqrt(2)) / 75)
    assert consistency([s1]) == 1.0
    assert consistency([s1, s1.copy()]) == pytest.approx(1.0)
    # cut to the shortest series
    assert consistency([s1, np.append(s1, 1000.0)]) == pytest.approx(1.0)


def test_trial_metrics_means_consistency_and_robust_statistics():
    df2 = DF.assign(total_reward=[20.0, 30.0, 40.0, 40.0])
    scalars = [session_metrics(d, 10.0)["scalar"] for d in (DF, df2)]
    m = trial_metrics([DF, df2], scalars, 10.0)
    assert m["num_sessions"] == 2
    assert m["strength"] == pytest.approx((15.0 + 22.5) / 2)
    assert m["total_reward_ma"] == pytest.approx((25.0 + 32.5) / 2)
    s1, s2 = np.array([0, 20, 10, 30.0]), np.array([10, 20, 30, 30.0])
    assert m["consistency"] == pytest.approx(consistency([s1, s2]))
    assert m["total_reward_ma_iqm"] == pytest.approx(28.75)  # two values: nothing trimmed
    assert m["total_reward_ma_ci_low"] >= 25.0 and m["total_reward_ma_ci_high"] <= 32.5


def test_session_metrics_without_finished_episodes_are_null():
    df = DF.assign(total_reward=np.nan)
    m = session_metrics(df, 0.0)["scalar"]
    assert m["strength"] is None and m["total_reward_ma"] is None


# R_rand = 10, R = [0, -10, 30, 20] -> str = [-10, -20, 20, 10]: worse than random, then better
MIXED = DF.assign(total_reward=[0.0, -10.0, 30.0, 20.0])


def test_session_metrics_of_mixed_sign_strength_hand_computed():
    m = session_metrics(MIXED, random_baseline=10.0)["scalar"]
    assert m["strength"] == pytest.approx(0.0)
    assert m["max_strength"] == pytest.approx(20.0) and m["final_strength"] == pytest.approx(10.0)
    # only strength above the baseline counts as gained: g = [0, 0, 20, 10]
    assert m["sample_efficiency"] == pytest.approx((20 / 300 + 10 / 400) / 30)
    assert m["training_efficiency"] == pytest.approx((20 / 10 + 10 / 20) / 30)
    # drops 10 + 10 = 20 lost, |str| before the last = 10 + 20 + 20 = 50 held
    assert m["stability"] == pytest.approx(1 - 20 / 50)
    local = session_metrics(MIXED, 10.0)["local"]
    assert local["sample_efficiency"][:2] == [0.0, 0.0]  # nothing gained yet
    assert local["sample_efficiency"][-1] == pytest.approx(m["sample_efficiency"])


def test_metrics_of_a_session_never_better_than_random():
    s = np.array([-10.0, -20.0, -30.0])
    assert efficiency(s, np.array([100, 200, 300])) == 0.0
    assert stability(s) == pytest.approx(1 - 20 / 30)  # lost 20 of the 30 held
    assert stability(s[::-1]) == pytest.approx(1.0)  # -30 -> -20 -> -10: never fell back
    assert stability(np.zeros(3)) == 1.0


def test_stability_stays_in_zero_one_when_more_is_lost_than_held():
    s = np.array([1.0, -10.0, 1.0, -10.0])  # lost 11 + 11 = 22, held 1 + 10 + 1 = 12
    assert stability(s) == 0.0


def test_consistency_of_negative_and_mixed_strength_is_at_most_one():
    below = [np.array([-10.0, -20.0]), np.array([-30.0, -20.0])]
    # std: 20/sqrt(2), 0; mean |str|: 20, 20 (SLM Lab's sum of means -40 would give 1.71)
    assert consistency(below) == pytest.approx(1 - 2 * (20 / math.sqrt(2)) / 40)
    mixed = [np.array([5.0, 5.0]), np.array([-5.0, 5.0])]
    assert consistency(mixed) == pytest.approx(1 - 2 * (10 / math.sqrt(2)) / 10)
    assert consistency([np.zeros(3), np.zeros(3)]) == 1.0
    assert consistency([-np.arange(1.0, 4.0)] * 2) == pytest.approx(1.0)


def test_trial_of_sessions_worse_than_random():
    dfs = [DF.assign(total_reward=r) for r in ([-5.0, -6.0, -4.0, -5.0], [-4.0, -5.0, -6.0, -5.5])]
    scalars = [session_metrics(d, 10.0)["scalar"] for d in dfs]
    m = trial_metrics(dfs, scalars, 10.0)
    assert m["consistency"] <= 1.0
    assert m["sample_efficiency"] == 0.0 and m["training_efficiency"] == 0.0
    assert 0.0 <= m["stability"] <= 1.0
    assert m["strength"] == pytest.approx((-15.0 - 15.125) / 2)
