"""End to end through the CLI: a short dev run and a 2-session train run, and their run folders."""

import json

import pandas as pd
import pytest

from tests.conftest import SLM_SPECS, only_run, run_cli

PPO = str(SLM_SPECS / "benchmark/ppo/ppo_cartpole.json")
COLUMNS = ["frame", "t", "epi", "wall_t", "opt_step", "fps", "total_reward", "total_reward_ma", "loss", "lr",
           "entropy", "entropy_coef", "clip_eps"]


def test_dev_run_writes_a_complete_run_folder(data_dir):
    proc = run_cli("run", PPO, "ppo_cartpole", "dev", "--set", "env.max_frame=2048", "--set",
                   "meta.log_frequency=512", "--quiet", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    run = only_run(data_dir)
    assert str(run) in proc.stdout
    n = "ppo_cartpole"
    spec = json.loads((run / f"{n}_spec.json").read_text())
    meta = spec["meta"]
    assert isinstance(meta["random_seed"], int) and len(meta["session_seeds"]) == 1
    assert "git_sha" in meta and "torch" in meta["versions"] and "looplab run" in meta["command"]
    assert spec["env"]["max_frame"] == 2048
    assert (run / f"{n}_t0_spec.json").exists()
    df = pd.read_csv(run / "info" / f"{n}_t0_s0_session_df_train.csv")
    assert list(df.columns[: len(COLUMNS)]) == COLUMNS
    assert df["frame"].tolist() == [512, 1024, 1536, 2048]
    assert (df["opt_step"].diff().dropna() >= 0).all() and df["opt_step"].iloc[-1] > 0
    metrics = json.loads((run / "info" / f"{n}_t0_s0_session_metrics_scalar_train.json").read_text())
    for key in ("strength", "max_strength", "final_strength", "sample_efficiency", "training_efficiency",
                "stability", "total_reward_ma"):
        assert key in metrics
    trial = json.loads((run / f"{n}_t0_trial_metrics_scalar.json").read_text())
    assert trial["consistency"] == 1.0 and trial["frame"] == 2048
    for net in ("net", "critic_net"):
        assert (run / "model" / f"{n}_t0_s0_{net}_model.pt").exists()
        assert (run / "model" / f"{n}_t0_s0_ckpt-best_{net}_model.pt").exists()
    assert (run / f"{n}_t0_trial_graph_mean_returns_vs_frames.png").stat().st_size > 1000
    assert (run / "graph" / f"{n}_t0_s0_session_graph_train_mean_returns_vs_frames.png").exists()
    assert (run / "log" / f"{n}.log").read_text().strip()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_train_runs_sessions_in_parallel_with_distinct_seeds(data_dir):
    proc = run_cli("run", PPO, "ppo_cartpole", "train", "--set", "env.max_frame=1024", "--set",
                   "meta.log_frequency=512", "--set", "meta.max_session=2", "--set", "meta.random_seed=7",
                   "--quiet", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    run = only_run(data_dir)
    spec = json.loads((run / "ppo_cartpole_spec.json").read_text())
    seeds = spec["meta"]["session_seeds"]
    assert spec["meta"]["random_seed"] == 7 and len(set(seeds)) == 2
    dfs = [pd.read_csv(run / "info" / f"ppo_cartpole_t0_s{s}_session_df_train.csv") for s in (0, 1)]
    assert all(len(df) == 2 for df in dfs)
    assert not dfs[0]["loss"].equals(dfs[1]["loss"])  # different seeds, different runs
    trial = json.loads((run / "ppo_cartpole_t0_trial_metrics_scalar.json").read_text())
    assert trial["num_sessions"] == 2 and trial["consistency"] is None or isinstance(trial["consistency"], float)
    for s in (0, 1):
        assert (run / "log" / f"ppo_cartpole_t0_s{s}.log").exists()


@pytest.mark.parametrize("args,needle", [
    (["run", PPO, "nope", "dev"], "no spec named 'nope'"),
    (["run", PPO, "ppo_cartpole", "dev", "--set", "agent.algorithm.gamm=0.9"], "did you mean 'gamma'"),
    (["run", PPO, "ppo_cartpole", "fly"], "unknown mode 'fly'"),
    (["run", PPO, "ppo_cartpole", "dev", "--set", "env.name=NoSuchEnv-v0"], "env.name"),
])
def test_bad_input_is_one_line_exit_2_and_no_folder(data_dir, args, needle):
    proc = run_cli(*args, data_dir=data_dir)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr
    assert not any(data_dir.iterdir())
