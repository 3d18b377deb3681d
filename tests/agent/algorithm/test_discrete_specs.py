"""Every SLM Lab spec of the discrete family (and A2C's continuous ones) loads, validates and trains briefly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from looplab.experiment.run import prepare
from tests.agent.loop import make_agent, step
from tests.conftest import SLM_SPECS, placeholder_values

# the classic-control and Box2D files of the family (Atari and MuJoCo files need `-s env=` and pixels)
FILES = [
    "benchmark_arc/reinforce/reinforce_arc.yaml", "benchmark_arc/sarsa/sarsa_arc.yaml",
    "benchmark_arc/dqn/dqn_classic_arc.yaml", "benchmark_arc/a2c/a2c_classic_arc.yaml",
    "benchmark/reinforce/reinforce_cartpole.json", "benchmark/sarsa/sarsa_cartpole.json",
    "benchmark/dqn/dqn_cartpole.json", "benchmark/sil/ppo_sil_cartpole.json", "benchmark/a2c/a2c_gae_cartpole.json",
]


def spec_names() -> list[tuple[Path, str]]:
    out = []
    for name in FILES:
        f = SLM_SPECS / name
        data = yaml.safe_load(f.read_text())
        out += [(f, spec) for spec in data if not spec.startswith("_")]
    return out


def run_frames(spec, frames: int, seed: int = 0) -> tuple:
    """Act, step and update for `frames` frames, as the session loop does; returns (agent, env)."""
    agent, env = make_agent(spec, seed)
    state = env.reset()
    while agent.clock.frame < frames:
        state = step(agent, env, state)
    env.close()
    return agent, env


@pytest.mark.parametrize(("path", "name"), spec_names(), ids=lambda x: x if isinstance(x, str) else x.parent.name)
def test_spec_runs(path: Path, name: str):
    _, spec, _ = prepare(str(path), name, placeholder_values(path), ["env.max_frame=400"])
    # training must happen within the short run: shrink the warm-up and on-policy horizons
    cfg = spec.algorithm
    if getattr(cfg, "training_start_step", None):
        cfg.training_start_step = min(cfg.training_start_step, 64)
    if getattr(cfg, "training_frequency", None):
        cfg.training_frequency = min(cfg.training_frequency, 16)
    if getattr(cfg, "time_horizon", None):
        cfg.time_horizon = min(cfg.time_horizon, 32)
    agent, _ = run_frames(spec, 400 if spec.env.num_envs < 8 else 640)
    assert agent.clock.opt_step > 0, "never trained"
    assert np.isfinite(agent.loss)
    assert agent.nonfinite == 0
