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


@pytest.mark.slow
@pytest.mark.parametrize(("use_sde", "reaches"), [(True, True), (False, False)])
def test_a2c_with_gsde_swings_pendulum_up_where_plain_a2c_has_not_yet(use_sde, reaches, data_dir):
    """gSDE's noise, held for a rollout, swings the pendulum up within 3e5 frames (a mean return above -400);
    the same A2C with fresh Gaussian noise at every step is still near a random policy's -1,200 there."""
    proc = run_cli("run", "a2c_pendulum.json", "a2c_pendulum_gsde", "train", "--set", "meta.max_session=1",
                   "--set", "meta.random_seed=1", "--set", "env.max_frame=300000", "--set",
                   "agent.net.lr_scheduler_spec.frame=300000", "--set", f"agent.algorithm.use_sde={str(use_sde).lower()}",
                   "--quiet", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(only_run(data_dir) / "info" / "a2c_pendulum_gsde_t0_s0_session_df_train.csv")
    assert (df["total_reward"].max() > -400) == reaches, df[["frame", "total_reward"]].tail(10)
