"""Runs whose sessions finished no episode, or logged only their final row: metrics are null, never a crash.

Regression: trial metrics took np.nanmean over session metrics that were None (JSON null for a session
without a finished episode) and raised TypeError, and such a session reported frame 0.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from looplab.analysis.metrics import session_metrics, trial_metrics
from tests.conftest import SLM_SPECS, only_run, run_cli

NO_EPISODE = pd.DataFrame({"frame": [200, 400], "opt_step": [10, 30], "total_reward": [np.nan, np.nan]})
# episodes finish only after the first checkpoint: R = [nan, 10, 30], R_rand = 10 -> str = [0, 20]
LATE = pd.DataFrame({"frame": [200, 400, 600], "opt_step": [0, 10, 20], "total_reward": [np.nan, 10.0, 30.0]})


def test_session_without_episodes_is_null_at_its_real_frame():
    m = session_metrics(NO_EPISODE, 10.0)["scalar"]
    assert m["frame"] == 400
    assert all(m[k] is None for k in ("total_reward_ma", "strength", "sample_efficiency", "stability"))


def test_trial_mixes_a_session_without_episodes_with_one_with_episodes():
    scalars = [session_metrics(df, 10.0)["scalar"] for df in (NO_EPISODE, LATE)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" on the way
        m = trial_metrics([NO_EPISODE, LATE], scalars, 10.0)
    assert m["frame"] == 600 and m["num_sessions"] == 2
    assert m["strength"] == pytest.approx(10.0)  # the other session's mean only
    assert m["final_strength"] == pytest.approx(20.0)
    assert m["total_reward_ma"] == pytest.approx(20.0)
    assert m["total_reward_ma_iqm"] == pytest.approx(20.0)
    assert m["consistency"] == 1.0  # one session with strengths


@pytest.mark.parametrize("scalars", [[{"frame": 400, "strength": None, "total_reward_ma": None}] * 2, [{}], []],
                         ids=["all-null", "stopped-before-a-checkpoint", "no-session"])
def test_trial_without_any_episode_is_null(scalars):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = trial_metrics([NO_EPISODE] * len(scalars), scalars, 10.0)
    assert m["strength"] is None and m["total_reward_ma"] is None and m["total_reward_ma_iqm"] is None
    assert m["consistency"] is None and m["num_sessions"] == len(scalars)
    json.dumps(m, allow_nan=False)  # valid JSON


def test_cli_run_ending_before_its_first_log_checkpoint_without_an_episode(data_dir):
    """MountainCar's episodes last 200 steps: 2 envs x 100 steps finish none."""
    path = SLM_SPECS / "benchmark_arc/dqn/dqn_classic_arc.yaml"
    if not path.exists():
        pytest.skip(f"{path} not available")
    sets = ["env.max_frame=200", "env.num_envs=2", "meta.log_frequency=100000", "meta.max_session=1",
            "meta.tensorboard=false", "agent.algorithm.training_start_step=32"]
    proc = run_cli("run", str(path), "dqn_mountaincar_arc", "train", *[a for s in sets for a in ("--set", s)],
                   "--quiet", data_dir=data_dir, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(data_dir)
    trial = json.loads((run / "dqn_mountaincar_arc_t0_trial_metrics_scalar.json").read_text())
    assert trial["frame"] == 200 and trial["num_sessions"] == 1
    assert trial["strength"] is None and trial["total_reward_ma"] is None
    session = json.loads((run / "info" / "dqn_mountaincar_arc_t0_s0_session_metrics_scalar_train.json").read_text())
    assert session["frame"] == 200 and session["strength"] is None
    df = pd.read_csv(run / "info" / "dqn_mountaincar_arc_t0_s0_session_df_train.csv")
    assert len(df) == 1 and df["frame"].iloc[0] == 200 and df["total_reward"].isna().all() and df["opt_step"].iloc[0] > 0
