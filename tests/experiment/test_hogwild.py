"""Hogwild trials through the CLI: LoopLab's A3C on CartPole (shared, synced), SLM Lab's A3C and DPPO specs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import SLM_SPECS, only_run, run_cli

A3C = "looplab/spec/library/a3c_cartpole.json"


def session_dfs(run, name: str, sessions: int) -> list[pd.DataFrame]:
    return [pd.read_csv(run / "info" / f"{name}_t0_s{s}_session_df_train.csv") for s in range(sessions)]


@pytest.mark.parametrize("name", ["a3c_cartpole", "a3c_synced_cartpole"])
def test_hogwild_trial_runs_its_workers_as_sessions_and_refuses_resume(name, data_dir):
    proc = run_cli("run", A3C, name, "train", "--set", "env.max_frame=2000", "--set", "meta.log_frequency=400",
                   "--quiet", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    run = only_run(data_dir)
    dfs = session_dfs(run, name, 2)
    for df in dfs:  # each worker runs max_frame / max_session frames, as in SLM Lab, and trains
        assert df["frame"].tolist() == [400, 800, 1000] and df["opt_step"].iloc[-1] > 0
    trial = json.loads((run / f"{name}_t0_trial_metrics_scalar.json").read_text())
    assert trial["num_sessions"] == 2 and trial["frame"] == 1000
    log = (run / "log" / f"{name}.log").read_text()
    assert "not bit-reproducible" in log
    assert "not bit-reproducible" in (run / "index.html").read_text()

    again = run_cli("run", A3C, name, f"train@{run}", "--quiet", data_dir=data_dir)
    assert again.returncode == 2
    line = again.stderr.strip()
    assert "\n" not in line and "Hogwild run (meta.distributed:" in line and "cannot be resumed" in line
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


@pytest.mark.parametrize(("file", "name", "sets"), [
    ("benchmark/a3c/a3c_gae_pong.json", "a3c_gae_pong_test", ["env.max_frame=512", "meta.log_frequency=128"]),
    ("benchmark/dppo/dppo_pong.json", "dppo_pong", ["env.max_frame=512", "meta.log_frequency=128",
                                                     "agent.algorithm.time_horizon=16",
                                                     "agent.algorithm.minibatch_size=32"]),
])
def test_slm_lab_hogwild_specs_run_a_short_trial(file, name, sets, data_dir):
    args = [a for s in [*sets, "meta.max_session=2"] for a in ("--set", s)]
    proc = run_cli("run", str(SLM_SPECS / file), name, "train", *args, "--quiet", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    run = only_run(data_dir)
    for df in session_dfs(run, name, 2):
        assert df["frame"].iloc[-1] == 256 and df["opt_step"].iloc[-1] > 0
    spec = json.loads((run / f"{name}_spec.json").read_text())
    assert spec["meta"]["distributed"] in ("shared", "synced")


def test_hogwild_with_an_algorithm_without_nets_is_one_line(data_dir):
    bad = "tests/data/bad_specs/distributed_random.json"
    proc = run_cli("run", bad, "s", "train", data_dir=data_dir)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"looplab: error: {bad}: spec 's': meta.distributed: Random has no nets to train, "
                                   "so Hogwild cannot share any; set it to false")
    assert not any(data_dir.iterdir())
