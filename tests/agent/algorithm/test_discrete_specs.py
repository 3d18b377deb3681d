"""Every SLM Lab spec of the discrete family (and A2C's continuous ones) loads, validates and trains briefly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from looplab.env import Clock, Env
from looplab.experiment.run import prepare
from looplab.registry import ALGORITHMS
from tests.conftest import SHARED_SPECS

FILES = [
    *[f"benchmark_arc/{d}" for d in ("reinforce", "sarsa", "dqn", "a2c")],
    *[f"benchmark/{d}" for d in ("reinforce", "sarsa", "dqn", "sil", "a2c")],
]


def spec_names() -> list[tuple[Path, str]]:
    out = []
    for folder in FILES:
        for f in sorted((SHARED_SPECS / folder).glob("*")):
            if f.suffix not in (".json", ".yaml", ".yml"):
                continue
            data = yaml.safe_load(f.read_text())
            out += [(f, name) for name in data if not name.startswith("_")]
    return out


def run_frames(spec, frames: int, seed: int = 0) -> tuple:
    torch.set_num_threads(1)
    """Act, step and update for `frames` frames, as the session loop does; returns (agent, env)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    env = Env(spec, seed)
    clock = Clock(num_envs=env.num_envs)
    agent = ALGORITHMS.get(spec.algorithm.name)(spec, env.info, clock)
    state = env.reset()
    while clock.frame < frames:
        action = agent.act(state)
        obs, reward, terminated, truncated, next_state = env.step(action)
        agent.update(state, action, reward, next_state, terminated, truncated)
        state = obs
        clock.tick()
    env.close()
    return agent, env


@pytest.mark.parametrize(("path", "name"), spec_names(), ids=lambda x: x if isinstance(x, str) else x.parent.name)
def test_spec_runs(path: Path, name: str):
    _, spec, _ = prepare(str(path), name, None, ["env.max_frame=400"])
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
