"""Every SLM Lab spec of the discrete family (and A2C's continuous ones) loads, validates and trains briefly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from looplab.experiment.run import prepare
from tests.agent.loop import make_agent, step
from tests.conftest import SLM_SPECS, placeholder_values

FILES = [
    *[f"benchmark_arc/{d}" for d in ("reinforce", "sarsa", "dqn", "a2c")],
    *[f"benchmark/{d}" for d in ("reinforce", "sarsa", "dqn", "sil", "a2c")],
]


def spec_names() -> list[tuple[Path, str]]:
    out = []
    for folder in FILES:
        for f in sorted((SLM_SPECS / folder).glob("*")):
            if f.suffix not in (".json", ".yaml", ".yml"):
                continue
            data = yaml.safe_load(f.read_text())
            out += [(f, name) for name in data if not name.startswith("_")]
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
