"""SLM Lab's session and trial metric formulas (reference §5) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from looplab.analysis.metrics import consistency, session_metrics, trial_metrics

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
