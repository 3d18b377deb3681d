"""SLM Lab-format MuJoCo and Atari specs with `-s env=...`: PPO on MuJoCo, PPO and DQN on Pong, short runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from looplab.analysis.baseline import _key, cache_file
from tests.conftest import ROOT, TEST_SPECS, only_run, run_cli

SPECS = TEST_SPECS / "slm_mujoco_atari.yaml"
PONG_RANDOM = -20.25  # SLM Lab's published random baseline; measuring it takes 200k Atari steps


@pytest.fixture
def pong_baseline():
    """Seed the isolated baseline cache so that a smoke run does not spend a minute measuring Pong."""
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    cache = json.loads(path.read_text()) if path.exists() else {}
    cache[_key("ALE/Pong-v5", {"life_loss_info": True})] = {"mean": PONG_RANDOM, "episodes": 100}
    path.write_text(json.dumps(cache))


def _df(data_dir) -> pd.DataFrame:
    run = only_run(data_dir)
    return pd.read_csv(next(run.glob("info/*session_df*.csv")))


def test_ppo_mujoco_spec_with_env_substitution(data_dir):
    proc = run_cli("run", str(SPECS), "ppo_mujoco_arc", "dev", "-s", "env=Hopper-v5", "-s", "max_frame=1024",
                   "--set", "agent.algorithm.time_horizon=32", "--set", "meta.log_frequency=512", "--quiet",
                   data_dir=data_dir, check=True)
    run = only_run(data_dir)
    assert run.name.startswith("ppo_mujoco_arc_hopper_"), proc.stdout[-500:]
    df = _df(data_dir)
    assert list(df["frame"]) == [512, 1024]
    assert df["opt_step"].iloc[-1] > 0 and np.isfinite(df["loss"].iloc[-1])
    assert np.isfinite(df["total_reward"].iloc[-1])  # raw returns, not normalized rewards
    assert df["total_reward"].iloc[-1] > 0.0


def test_ppo_atari_spec_on_pong(data_dir, pong_baseline):
    run_cli("run", str(SPECS), "ppo_atari_arc", "dev", "-s", "env=ALE/Pong-v5", "--set", "env.max_frame=768",
            "--set", "agent.algorithm.time_horizon=16", "--set", "meta.log_frequency=256", "--quiet",
            data_dir=data_dir, check=True)
    df = _df(data_dir)
    assert list(df["frame"]) == [256, 512, 768]
    assert df["opt_step"].iloc[-1] > 0 and np.isfinite(df["loss"].iloc[-1])


def test_dqn_atari_spec_on_pong(data_dir, pong_baseline):
    run_cli("run", str(SPECS), "dqn_atari", "dev", "-s", "env=ALE/Pong-v5", "--set", "env.max_frame=768",
            "--set", "agent.algorithm.training_start_step=256", "--set", "meta.log_frequency=256", "--quiet",
            data_dir=data_dir, check=True)
    df = _df(data_dir)
    assert list(df["frame"]) == [256, 512, 768]
    assert df["opt_step"].iloc[-1] > 0 and np.isfinite(df["loss"].iloc[-1])


def test_mujoco_warnings_go_to_the_log_not_the_terminal():
    # Gymnasium's HalfCheetah model uses an attribute MuJoCo calls deprecated; MuJoCo prints that itself
    code = ("import logging, sys; from looplab.env.make import single_env_fn; "
            "logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='log: %(message)s'); "
            "single_env_fn('HalfCheetah-v5', {})().reset(seed=0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "settotalmass" in line]
    assert lines and all(line.startswith("log: MuJoCo: ") for line in lines), lines
