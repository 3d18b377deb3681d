"""The report of an experiment-shaped run folder made by hand: experiment, multi-trial, trial and session graphs."""

from __future__ import annotations

import pandas as pd

from looplab import io
from looplab.analysis.report import write_report
from looplab.runfolder import RunPaths
from tests.analysis.checks import plotly_figures
from tests.analysis.test_graphs import _session_df


def test_report_of_an_experiment_with_a_still_running_trial(tmp_path):
    paths = RunPaths.create(tmp_path, "exp")
    io.write_json(paths.root / "run.json", {"spec_name": "exp", "status": "running", "mode": "search",
                                            "env": "CartPole-v1", "algorithm": "PPO"})
    io.write_json(paths.root / "exp_spec.json", {"meta": {"git_sha": "abc123", "git_dirty": True,
                                                          "random_seed": 7, "session_seeds": [11, 12]}})
    for t in (0, 1):
        for s in (0, 1):
            io.write_csv(paths.session_df(t, s), _session_df(2 * t + s))
    # trial 0 finished (metrics written); trial 1 still running: its session metrics come from its dataframes
    io.write_json(paths.root / "exp_t0_trial_metrics_scalar.json", {"total_reward_ma": 150.0, "strength": 99.0,
                                                                   "random_baseline": 22.0})
    io.write_json(paths.root / "exp_t1_trial_metrics_scalar.json", {"random_baseline": 22.0})
    io.write_csv(paths.root / "exp_experiment_df.csv", pd.DataFrame(
        {"trial": [0, 1], "agent.algorithm.gamma": [0.9, 0.99], "total_reward_ma": [150.0, 120.0],
         "total_reward_ma_iqm": [150.0, 120.0], "strength": [99.0, 80.0]}))
    out = write_report(paths.root)
    assert out == paths.root / "index.html"
    # experiment graph, multi-trial graph, 2 trial graphs, 4 session graphs
    figs = plotly_figures(out)
    assert len(figs) == 1 + 1 + 2 + 4
    experiment = figs[0]["data"]
    assert len(experiment) == 2  # gamma (the only hyperparameter; the IQM column is none) x 2 metrics
    text = out.read_text()
    assert "abc123" in text and "dirty" in text and "s1: 12" in text and "running" in text
    assert text.count("<tr class='session'>") == 4
    # the running trial's session rows hold strengths computed from the dataframes (R - 22)
    s0 = _session_df(2)
    assert f"{(s0['total_reward'] - 22.0).mean():,.4g}" in text
