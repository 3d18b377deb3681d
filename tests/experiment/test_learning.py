"""PPO learns CartPole: a moving-average return of at least 195 within a short budget."""

import pandas as pd
import pytest

from tests.conftest import only_run, run_cli


@pytest.mark.slow
def test_ppo_learns_cartpole(data_dir):
    proc = run_cli("run", "demo.json", "ppo_cartpole", "dev", "--set", "env.max_frame=40000", "--set",
                   "agent.net.lr_scheduler_spec.frame=40000", "--set", "meta.log_frequency=1000", "--quiet",
                   data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(only_run(data_dir) / "info" / "ppo_cartpole_t0_s0_session_df_train.csv")
    # total_reward is the mean of the last 100 episodes at each checkpoint
    assert df["total_reward"].max() >= 195, df[["frame", "total_reward"]].tail(10)
