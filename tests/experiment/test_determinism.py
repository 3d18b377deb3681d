"""Determinism and bit-exact resume, in process, for every registered algorithm (one without a case fails).

Each case runs a session three times: twice straight through (same dataframe, same final weights),
and once stopped by a SIGTERM request at a log checkpoint and resumed from its checkpoint by a new
Session (same dataframe as the straight run); and once more with the global generators reseeded between
steps (same dataframe and weights again: the loop draws from the session's own streams).
The subprocess kill tests are in test_resume.py.
"""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from looplab.agent.algorithm import ALGORITHMS
from looplab.errors import SpecError
from looplab.experiment import session as session_mod
from looplab.experiment.run import prepare
from looplab.experiment.stop import STOP
from looplab.runfolder import SUBDIRS, RunPaths
from tests.conftest import ROOT, SLM_SPECS, TEST_SPECS

BENCH = SLM_SPECS / "benchmark"
SMOKE = TEST_SPECS / "smoke_specs.json"
LIBRARY = ROOT / "looplab" / "spec" / "library"
TINY = ["meta.tensorboard=false", "meta.log_frequency=50"]
# (id, spec file, spec name, overrides): tiny runs that cross several log checkpoints mid-episode
CASES = [
    ("PPO-1env", BENCH / "ppo/ppo_cartpole.json", "ppo_cartpole",
     ["env.max_frame=300", "env.num_envs=1", "agent.algorithm.time_horizon=32", "agent.algorithm.minibatch_size=32",
      "agent.algorithm.training_epoch=2"]),
    ("PPO-4env", BENCH / "ppo/ppo_cartpole.json", "ppo_cartpole",
     ["env.max_frame=400", "env.num_envs=4", "agent.algorithm.time_horizon=16", "agent.algorithm.minibatch_size=64",
      "agent.algorithm.training_epoch=2"]),
    ("PPO-continuous", BENCH / "ppo/ppo_pendulum.json", "ppo_pendulum",
     ["env.max_frame=200", "env.num_envs=2", "agent.algorithm.time_horizon=32", "agent.algorithm.training_epoch=2"]),
    ("PPO-compile", BENCH / "ppo/ppo_pendulum.json", "ppo_pendulum",
     ["env.max_frame=200", "env.num_envs=2", "agent.algorithm.time_horizon=32", "agent.algorithm.training_epoch=2",
      "agent.algorithm.compile=true", "agent.algorithm.normalize_v_targets=true"]),
    ("DQN-Replay", BENCH / "dqn/dqn_cartpole.json", "dqn_epsilon_greedy_cartpole", ["env.max_frame=300"]),
    ("VanillaDQN", BENCH / "dqn/dqn_cartpole.json", "vanilla_dqn_boltzmann_cartpole",
     ["env.max_frame=300", "agent.algorithm.training_start_step=32", "agent.memory.batch_size=16"]),
    ("DDQN-PER", BENCH / "dqn/dqn_cartpole.json", "ddqn_per_boltzmann_cartpole", ["env.max_frame=200"]),
    ("PPO-gSDE", BENCH / "ppo/ppo_pendulum.json", "ppo_pendulum",
     ["env.max_frame=200", "env.num_envs=2", "agent.algorithm.time_horizon=32", "agent.algorithm.training_epoch=2",
      "agent.algorithm.use_sde=true", "agent.net.log_std_init=-1"]),
    ("A2C-gSDE", LIBRARY / "a2c_pendulum.json", "a2c_pendulum",
     ["env.max_frame=300", "env.num_envs=2", "meta.log_frequency=50", "agent.algorithm.training_frequency=8",
      "agent.algorithm.use_sde=true", "agent.algorithm.sde_sample_freq=3"]),
    ("SAC", BENCH / "sac/sac_pendulum.json", "sac_pendulum",
     ["env.max_frame=160", "agent.algorithm.training_start_step=80", "agent.memory.batch_size=32"]),
    ("A2C", BENCH / "a2c/a2c_gae_cartpole.json", None, ["env.max_frame=300"]),
    ("SIL", SMOKE, "sil_cartpole", ["env.max_frame=300"]),
    ("PPOSIL", BENCH / "sil/ppo_sil_cartpole.json", "ppo_sil_cartpole",
     ["env.max_frame=300", "agent.algorithm.time_horizon=32", "agent.algorithm.minibatch_size=32",
      "agent.algorithm.training_epoch=2"]),
    ("Random", SMOKE, "random_cartpole", ["env.max_frame=300"]),
    ("REINFORCE", BENCH / "reinforce/reinforce_cartpole.json", "reinforce_cartpole", ["env.max_frame=300"]),
    ("SARSA", BENCH / "sarsa/sarsa_cartpole.json", "sarsa_epsilon_greedy_cartpole", ["env.max_frame=300"]),
    ("CrossQ", BENCH / "crossq/crossq_classic.yaml", "crossq_cartpole",
     ["env.max_frame=160", "agent.algorithm.training_start_step=80", "agent.memory.batch_size=32"]),
]
IGNORED = ["wall_t", "fps"]


@pytest.fixture(autouse=True)
def _no_graphs(monkeypatch):
    """Graphs are drawn from the dataframe after the run; they are not what these tests compare."""
    from looplab.experiment import evaluation
    from looplab.experiment import session as session_mod

    monkeypatch.setattr(session_mod, "session_graphs", lambda *a, **k: [])
    monkeypatch.setattr(evaluation, "session_graphs", lambda *a, **k: [])
    torch.set_num_threads(1)
    yield
    STOP.signum = 0


def load_case(path: Path, name: str | None, overrides: list[str]):
    """The case's validated spec; a missing file or an unknown component fails the test."""
    if name is None:
        name = next(k for k in json.loads(path.read_text()) if not k.startswith("_"))
    _, spec, _ = prepare(str(path), name, None, [*overrides, *TINY, "meta.random_seed=7"])
    return spec


def test_every_registered_algorithm_has_a_case():
    """Every registered name, aliases included (SAC is SoftActorCritic), resolves to a class run below."""
    covered = {ALGORITHMS.get(load_case(*case[1:]).algorithm.name) for case in CASES}
    missing = [name for name in ALGORITHMS.names() if ALGORITHMS.get(name) not in covered]
    assert not missing, f"no determinism case for {missing}: add one to CASES"


def test_a_spec_naming_an_unregistered_algorithm_fails_rather_than_skips():
    with pytest.raises(SpecError, match="unknown algorithm 'NotAnAlgorithm'"):
        load_case(BENCH / "ppo/ppo_cartpole.json", "ppo_cartpole", ["agent.algorithm.name=NotAnAlgorithm"])


def run(spec, root: Path, stop_at_log: int | None = None, resume: bool = False) -> session_mod.Session:
    for sub in SUBDIRS:
        (root / sub).mkdir(parents=True, exist_ok=True)
    paths = RunPaths(root, spec.name)
    logs = [0]

    def progress(item: dict) -> None:
        logs[0] += 1
        if logs[0] == stop_at_log:
            STOP.signum = signal.SIGTERM  # what the signal handler does

    STOP.signum = 0
    s = session_mod.Session(spec, paths, 0, 0, 12345, "train", progress, 0.0, resume=resume)
    s.run()
    STOP.signum = 0
    return s


def frame(s: session_mod.Session) -> pd.DataFrame:
    df = pd.read_csv(s.paths.session_df(0, 0))
    return df.drop(columns=[c for c in IGNORED if c in df.columns])


def assert_same_weights(a: session_mod.Session, b: session_mod.Session) -> None:
    na, nb = a.agent.nets(), b.agent.nets()
    assert na.keys() == nb.keys() and (na or not a.agent.needs_net)
    for k in na:
        for (pa, ta), (pb, tb) in zip(na[k].state_dict().items(), nb[k].state_dict().items(), strict=True):
            assert pa == pb and torch.equal(ta, tb), f"{k}.{pa} differs"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_seed_same_run_and_exact_resume(case, tmp_path):
    _, path, name, overrides = case
    spec = load_case(path, name, overrides)
    a = run(spec, tmp_path / "a")
    b = run(spec, tmp_path / "b")
    df = frame(a)
    assert len(df) >= 3 and df["frame"].iloc[-1] == spec.env.max_frame
    pd.testing.assert_frame_equal(df, frame(b), check_exact=True)
    assert_same_weights(a, b)

    # stopped at the next-to-last log checkpoint: after training started, and only one segment to redo
    stop_at = len(df) - 1
    stopped = run(spec, tmp_path / "c", stop_at_log=stop_at)
    assert stopped.interrupted and len(stopped.rows) == stop_at
    resumed = run(spec, tmp_path / "c", resume=True)
    assert resumed.clock.frame == spec.env.max_frame
    pd.testing.assert_frame_equal(df, frame(resumed), check_exact=True)
    assert_same_weights(a, resumed)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_the_global_generators_do_not_move_a_run(case, tmp_path, monkeypatch):
    """Python's, NumPy's and torch's global generators reseeded before every step change nothing: acting,
    exploration, minibatches and replay samples draw from the session's own streams."""
    _, path, name, overrides = case
    spec = load_case(path, name, overrides)
    straight = run(spec, tmp_path / "a")
    loop_step = session_mod.step

    def disturbed_step(agent, env, clock, state, actions=None):
        random.seed(clock.frame)
        np.random.seed(clock.frame)
        torch.manual_seed(clock.frame)
        return loop_step(agent, env, clock, state, actions)

    monkeypatch.setattr(session_mod, "step", disturbed_step)
    disturbed = run(spec, tmp_path / "b")
    pd.testing.assert_frame_equal(frame(straight), frame(disturbed), check_exact=True)
    assert_same_weights(straight, disturbed)


def test_a_different_seed_gives_a_different_start(tmp_path):
    spec = load_case(*CASES[0][1:])
    paths = RunPaths(tmp_path, spec.name)
    first = [session_mod.Session(spec, paths, 0, 0, seed, "train") for seed in (1, 1, 2)]
    obs = [s.env.reset() for s in first]
    params = [next(iter(s.agent.nets()["net"].parameters())).detach() for s in first]
    assert (obs[0] == obs[1]).all() and torch.equal(params[0], params[1])
    assert not (obs[0] == obs[2]).all() and not torch.equal(params[0], params[2])
