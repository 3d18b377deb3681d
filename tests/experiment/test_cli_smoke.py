"""A tiny `looplab run ... dev` through the CLI for every registered algorithm, from SLM Lab-format spec files.

Each run must exit 0, write a session dataframe with rows up to max_frame and, except for Random, train.
A new algorithm without a case here fails `test_every_registered_algorithm_has_a_smoke_run`.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from looplab.agent.algorithm import ALGORITHMS
from tests.conftest import SLM_SPECS, TEST_SPECS, only_run, run_cli

BENCH = SLM_SPECS / "benchmark"
SMOKE = TEST_SPECS / "smoke_specs.json"
MAX_FRAME = 192
SETS = [f"env.max_frame={MAX_FRAME}", "meta.log_frequency=64", "meta.max_session=1", "meta.tensorboard=false",
        "env.num_envs=2"]
OFF_POLICY = ["agent.algorithm.training_start_step=32", "agent.memory.batch_size=16"]
ON_POLICY = ["agent.algorithm.time_horizon=32", "agent.algorithm.minibatch_size=32", "agent.algorithm.training_epoch=2"]
# (algorithm, spec file, spec name, extra overrides)
CASES = [
    ("Random", SMOKE, "random_cartpole", []),
    ("Reinforce", BENCH / "reinforce/reinforce_cartpole.json", "reinforce_cartpole", ["agent.algorithm.training_frequency=32"]),
    ("SARSA", BENCH / "sarsa/sarsa_cartpole.json", "sarsa_epsilon_greedy_cartpole", []),
    ("VanillaDQN", BENCH / "dqn/dqn_cartpole.json", "vanilla_dqn_boltzmann_cartpole", OFF_POLICY),
    # DQN and PPO run their RecurrentNet specs (DRQN with an LSTM, PPO with a GRU): the MLP ones run elsewhere
    ("DQN", TEST_SPECS / "rnn_cartpole.json", "dqn_rnn_cartpole", OFF_POLICY),
    ("DoubleDQN", BENCH / "dqn/dqn_cartpole.json", "ddqn_per_boltzmann_cartpole", OFF_POLICY),
    ("ActorCritic", BENCH / "a2c/a2c_gae_cartpole.json", "a2c_gae_cartpole", []),
    ("PPO", TEST_SPECS / "rnn_cartpole.json", "ppo_rnn_cartpole", ON_POLICY),
    ("SIL", SMOKE, "sil_cartpole", []),
    ("PPOSIL", BENCH / "sil/ppo_sil_cartpole.json", "ppo_sil_cartpole", ON_POLICY),
    ("SoftActorCritic", BENCH / "sac/sac_pendulum.json", "sac_pendulum", OFF_POLICY),
    ("CrossQ", BENCH / "crossq/crossq_classic.yaml", "crossq_cartpole", OFF_POLICY),
]


def test_every_registered_algorithm_has_a_smoke_run():
    """Every registered name, aliases included (SAC is SoftActorCritic), resolves to a class run below."""
    covered = {ALGORITHMS.get(name) for name, *_ in CASES}
    missing = [name for name in ALGORITHMS.names() if ALGORITHMS.get(name) not in covered]
    assert not missing, f"no CLI smoke run for {missing}: add a case to CASES"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cli_smoke_run(case, data_dir):
    algo, path, name, extra = case
    if not path.exists():
        pytest.skip(f"{path} not available")
    sets = [a for s in [*SETS, *extra] for a in ("--set", s)]
    proc = run_cli("run", str(path), name, "dev", *sets, "--quiet", data_dir=data_dir, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(data_dir)
    assert json.loads((run / f"{name}_spec.json").read_text())["agent"]["algorithm"]["name"] == algo
    df = pd.read_csv(next((run / "info").glob(f"{name}_t0_s0_session_df_*.csv")))
    assert len(df) >= 2 and df["frame"].iloc[-1] == MAX_FRAME
    if algo == "Random":
        assert df["opt_step"].iloc[-1] == 0
    else:
        assert df["opt_step"].iloc[-1] > 0, f"{algo} never trained in {MAX_FRAME} frames"
