"""`looplab specs [PATTERN]`: the shipped spec files as a table, filtered by substring or glob."""

from __future__ import annotations

from looplab.spec.catalog import matches, shipped_specs
from tests.conftest import run_cli


def test_rows_name_file_spec_env_algorithm_frames_and_envs():
    rows = shipped_specs("*dqn_classic_arc.yaml")
    assert len(rows) == 8
    ddqn = next(r for r in rows if r["spec"] == "ddqn_per_boltzmann_cartpole_arc")
    assert ddqn == {"file": "slm_lab/benchmark_arc/dqn/dqn_classic_arc.yaml", "spec": "ddqn_per_boltzmann_cartpole_arc",
                    "env": "CartPole-v1", "algorithm": "DoubleDQN", "max_frame": 200000, "num_envs": 4}


def test_pattern_matches_spec_names_and_the_library_is_listed():
    by_name = shipped_specs("ppo_mujoco_arc")
    assert {r["spec"] for r in by_name} >= {"ppo_mujoco_arc"}
    assert any(r["env"] == "${env}" for r in by_name)  # placeholders are shown as written
    everything = shipped_specs()
    assert any(r["file"] == "demo.json" for r in everything) and len(everything) > 200
    assert shipped_specs("no-such-spec-anywhere") == []


def test_matches_glob_or_substring():
    assert matches("slm_lab/benchmark/dqn/dqn_cartpole.json", "dqn_cart")
    assert matches("slm_lab/benchmark/dqn/dqn_cartpole.json", "*/dqn/*.json")
    assert not matches("dqn_cartpole", "ppo*")
    assert matches("anything", None)


def test_cli_lists_specs():
    proc = run_cli("specs", "sac_classic", check=True)
    assert "sac_cartpole_arc" in proc.stdout and "SoftActorCritic" in proc.stdout
    assert "slm_lab/benchmark_arc/sac/sac_classic_arc.yaml" in proc.stdout
