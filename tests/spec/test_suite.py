"""Benchmark suite files: strict validation with one-line errors, and the shipped SLM Lab suites."""

from __future__ import annotations

from pathlib import Path

import pytest

from looplab.errors import SpecError
from looplab.experiment.run import prepare
from looplab.spec.suite import load_suite, shipped_suites

ROW = """  - env: CartPole-v1
    algorithm: PPO
    spec_file: slm_lab/benchmark/ppo/ppo_cartpole.json
    spec_name: ppo_cartpole
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, where, fragment", [
    ("name: s\nrows:\n" + ROW + "    framez: 10\n", "rows.0.framez", "unknown key (did you mean 'frames'?)"),
    ("name: s\nrows:\n" + ROW + "    frames: 1.5\n", "rows.0.frames", "whole number, got 1.5"),
    ("name: s\nrows:\n" + ROW + "    sessions: 0\n", "rows.0.sessions", "greater than 0"),
    ("name: s\nrows:\n" + ROW + "    reference: high\n", "rows.0.reference", "valid number"),
    ("name: s\nrows:\n" + ROW.replace("    algorithm: PPO\n", ""), "rows.0.algorithm", "required key is missing"),
    ("name: s\nrows: []\n", "rows", "at least 1 item"),
    ("name: s\nrows:\n" + ROW + "rowz: []\n", "rowz", "unknown key (did you mean 'rows'?)"),
    ("name: s/../x\nrows:\n" + ROW, "name", "letters, digits"),
    ("name: s\nrows:\n" + ROW + ROW, "rows.1.name", "duplicate row name 'ppo_cartpole'"),
    ("- a\n- b\n", None, "a suite must be a mapping"),
    ("name: s\nrows: [\n", None, "invalid YAML at line"),
    ("", None, "a suite must be a mapping"),
])
def test_a_bad_suite_is_one_error_naming_the_file_and_key(tmp_path, text, where, fragment):
    file = write(tmp_path, text)
    with pytest.raises(SpecError) as e:
        load_suite(file)
    msg = str(e.value)
    assert msg.startswith(file) and fragment in msg and "\n" not in msg, msg
    if where:
        assert f": {where}: " in msg, msg


def test_an_unknown_suite_name_lists_the_shipped_ones():
    with pytest.raises(SpecError, match="did you mean 'slm_lab_classic'.*shipped suites: looplab_box2d, looplab_classic, slm_lab_box2d, slm_lab_classic"):
        load_suite("slm_lab_clasic")


def test_rows_merge_shared_keys_from_anchors_and_default_their_name(tmp_path):
    suite, _ = load_suite(write(tmp_path, "name: s\n_shared: &shared\n  sessions: 2\n  frames: 3e3\n"
                                          "rows:\n  - <<: *shared\n    " + ROW[4:]))
    row = suite.rows[0]
    assert (row.name, row.sessions, row.frames) == ("ppo_cartpole", 2, 3000)
    assert row.set_args == ["env.max_frame=3000", "meta.max_session=2"]


SLM_CLASSIC = {  # reference section 8, Phase 1: spec name -> (env, algorithm, published MA)
    "reinforce_cartpole_arc": ("CartPole-v1", "REINFORCE", 483.31),
    "sarsa_boltzmann_cartpole_arc": ("CartPole-v1", "SARSA", 430.95),
    "dqn_boltzmann_cartpole_arc": ("CartPole-v1", "DQN", 239.94),
    "ddqn_per_boltzmann_cartpole_arc": ("CartPole-v1", "DDQN+PER", 451.51),
    "a2c_gae_cartpole_arc": ("CartPole-v1", "A2C", 496.68),
    "ppo_cartpole_arc": ("CartPole-v1", "PPO", 498.94),
    "sac_cartpole_arc": ("CartPole-v1", "SAC", 406.09),
    "crossq_cartpole": ("CartPole-v1", "CrossQ", 334.59),
    "dqn_boltzmann_acrobot_arc": ("Acrobot-v1", "DQN", -94.17),
    "ddqn_per_acrobot_arc": ("Acrobot-v1", "DDQN+PER", -83.92),
    "a2c_gae_acrobot_arc": ("Acrobot-v1", "A2C", -83.99),
    "ppo_acrobot_arc": ("Acrobot-v1", "PPO", -81.28),
    "sac_acrobot_arc": ("Acrobot-v1", "SAC", -92.60),
    "crossq_acrobot": ("Acrobot-v1", "CrossQ", -103.13),
    "a2c_gae_pendulum_arc": ("Pendulum-v1", "A2C", -820.74),
    "ppo_pendulum_arc": ("Pendulum-v1", "PPO", -174.87),
    "sac_pendulum_arc": ("Pendulum-v1", "SAC", -150.97),
    "crossq_pendulum": ("Pendulum-v1", "CrossQ", -145.66),
}
TARGETS = {"CartPole-v1": 400, "Acrobot-v1": -100, "Pendulum-v1": -200, "LunarLander-v3": 200,
           "LunarLanderContinuous-v3": 200}


def test_the_classic_suite_is_slm_labs_phase_1_with_on_policy_rows_first():
    suite, _ = load_suite("slm_lab_classic")
    assert {r.spec_name: (r.env, r.algorithm, r.reference) for r in suite.rows} == SLM_CLASSIC
    for r in suite.rows:
        assert r.sessions == 4 and r.target == TARGETS[r.env] and "BENCHMARKS.md" in (r.source or "")
        assert r.frames == (200_000 if r.env == "CartPole-v1" else 300_000)
    on_policy = {"REINFORCE", "SARSA", "A2C", "PPO"}
    kinds = [r.algorithm in on_policy for r in suite.rows]
    assert kinds == sorted(kinds, reverse=True), [r.name for r in suite.rows]


def test_the_box2d_suite_is_slm_labs_phase_2():
    suite, _ = load_suite("slm_lab_box2d")
    assert len(suite.rows) == 10
    assert {(r.env, r.algorithm) for r in suite.rows} == {
        (e, a) for e in ("LunarLander-v3", "LunarLanderContinuous-v3") for a in ("A2C", "PPO", "SAC", "CrossQ")
    } | {("LunarLander-v3", "DQN"), ("LunarLander-v3", "DDQN+PER")}
    assert all(r.frames == 300_000 and r.sessions == 4 and r.target == 200 for r in suite.rows)


@pytest.mark.parametrize("name", shipped_suites())
def test_every_shipped_row_names_a_spec_that_loads_with_its_budget(name):
    suite, _ = load_suite(name)
    for r in suite.rows:
        _, spec, _ = prepare(r.spec_file, r.spec_name, r.var_args, r.set_args, check_env=False)
        assert (spec.env.max_frame, spec.meta.max_session) == (r.frames, r.sessions)
        continuous = spec.env.name == "LunarLanderContinuous-v3" or (spec.env.model_extra or {}).get("continuous")
        assert bool(continuous) == r.env.startswith("LunarLanderContinuous"), r.name
