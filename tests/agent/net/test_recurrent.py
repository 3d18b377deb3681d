"""RecurrentNet and the observation history it sees: real windows, zero padding, true final observations,
each cell type, checkpoints, and PPO / DQN sessions that resume exactly (their CLI runs: test_cli_smoke.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from looplab.agent.net import build_net
from looplab.agent.net.recurrent import RecurrentNetConfig
from looplab.env import Env
from looplab.env.transforms.history import ObsHistory
from looplab.experiment import checkpoint
from looplab.experiment.run import prepare
from tests.conftest import TEST_SPECS

RNN_SPECS = TEST_SPECS / "rnn_cartpole.json"


# ---- the history ----------------------------------------------------------------------------------
def test_windows_of_a_known_sequence_with_resets_and_true_final_observations():
    """3 envs, obs = [env, t]; env 1 ends its episode at step 2, env 2 at step 3 (final obs marked -1)."""
    h = ObsHistory(num_envs=3, seq_len=3, obs_shape=(2,), dtype=np.float32)
    obs0 = np.array([[0, 0], [1, 0], [2, 0]], dtype=np.float32)
    w0 = h.reset(obs0)
    assert w0.shape == (3, 3, 2)
    assert (w0[:, :2] == 0).all() and (w0[:, 2] == obs0).all()

    obs1 = obs0 + [0, 1]
    w1, n1 = h.slide(obs1, obs1, np.zeros(3, bool))
    assert n1 is w1
    np.testing.assert_array_equal(w1[0], [[0, 0], [0, 0], [0, 1]])

    # step 2: env 1 ends; obs holds its reset observation [1, 100], next_state its final one [1, -1]
    obs2 = obs0 + [0, 2]
    obs2[1] = [1, 100]
    final2 = obs0 + [0, 2]
    final2[1] = [1, -1]
    w2, n2 = h.slide(obs2, final2, np.array([False, True, False]))
    np.testing.assert_array_equal(n2[1], [[1, 0], [1, 1], [1, -1]])  # the ended episode, true final obs
    np.testing.assert_array_equal(w2[1], [[0, 0], [0, 0], [1, 100]])  # the new episode, zero-padded
    np.testing.assert_array_equal(w2[0], [[0, 0], [0, 1], [0, 2]])
    np.testing.assert_array_equal(n2[0], w2[0])

    # step 3: env 2 ends; env 1's new episode keeps its history, earlier windows are untouched
    obs3 = obs0 + [0, 3]
    obs3[1] = [1, 101]
    obs3[2] = [2, 200]
    final3 = obs3.copy()
    final3[2] = [2, -1]
    w3, n3 = h.slide(obs3, final3, np.array([False, False, True]))
    np.testing.assert_array_equal(w3[0], [[0, 1], [0, 2], [0, 3]])  # the window slides: oldest dropped
    np.testing.assert_array_equal(w3[1], [[0, 0], [1, 100], [1, 101]])
    np.testing.assert_array_equal(n3[2], [[2, 1], [2, 2], [2, -1]])
    np.testing.assert_array_equal(w3[2], [[0, 0], [0, 0], [2, 200]])
    np.testing.assert_array_equal(w2[1], [[0, 0], [0, 0], [1, 100]])
    np.testing.assert_array_equal(n2[1], [[1, 0], [1, 1], [1, -1]])


def rnn_spec(name: str = "ppo_rnn_cartpole", *overrides: str):
    return prepare(str(RNN_SPECS), name, None, ["meta.random_seed=3", *overrides])[1]


@pytest.mark.parametrize("num_envs", [1, 3])
def test_env_windows_follow_the_real_observations(num_envs):
    spec = rnn_spec("ppo_rnn_cartpole", f"env.num_envs={num_envs}", "env.autoreset=same_step")
    env = Env(spec, seed=5)
    assert env.info.state_shape == (4, 4)
    state = env.reset()
    assert state.shape == (num_envs, 4, 4) and (state[:, :3] == 0).all() and (state[:, 3] != 0).any()
    ends = 0
    for _ in range(120):
        obs, _, term, trunc, next_state = env.step(env.sample_actions())
        done = term | trunc
        cont = ~done
        # continuing envs: the window slides by one, the newest obs is both next_state and what to act on
        np.testing.assert_array_equal(obs[cont, :3], state[cont, 1:])
        np.testing.assert_array_equal(next_state[cont], obs[cont])
        # ended envs: next_state ends with the true final obs after the same history; obs starts afresh
        np.testing.assert_array_equal(next_state[done, :3], state[done, 1:])
        assert (obs[done, :3] == 0).all()
        assert (next_state[done, 3] != obs[done, 3]).any(axis=-1).all()
        ends += int(done.sum())
        state = obs
    env.close()
    assert ends >= 2  # random CartPole episodes last ~20 steps


def test_window_saved_with_the_env_state_and_restarted_envs_zero_padded():
    spec = rnn_spec("ppo_rnn_cartpole", "env.num_envs=2")
    env = Env(spec, seed=5)
    state = env.reset()
    for _ in range(5):
        state = env.step(np.array([0, 1]))[0]
    saved = checkpoint.env_state(env)
    other = Env(spec, seed=9)
    other.reset()
    checkpoint.load_env_state(other, saved)
    np.testing.assert_array_equal(other.transforms["history"].window, state)
    a, b = env.step(np.array([1, 0])), other.step(np.array([1, 0]))
    np.testing.assert_array_equal(a[0], b[0])
    restarted = checkpoint.restart_envs(other, b[0], np.array([False, True]))
    assert (restarted[1, :3] == 0).all() and (restarted[1, 3] != 0).any()
    np.testing.assert_array_equal(restarted[0], b[0][0])
    np.testing.assert_array_equal(other.transforms["history"].window, restarted)
    env.close()
    other.close()


# ---- the net --------------------------------------------------------------------------------------
def make_net(**keys) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = RecurrentNetConfig(type="RecurrentNet", fc_hid_layers=[16], rnn_hidden_size=8, seq_len=4, **keys)
    return build_net(cfg, (4, 3), [2, 1])


@pytest.mark.parametrize("keys", [{"cell_type": "RNN"}, {"cell_type": "LSTM"}, {"cell_type": "GRU"},
                                  {"cell_type": "GRU", "rnn_num_layers": 2, "bidirectional": True},
                                  {"cell_type": "LSTM", "init_fn": "orthogonal_", "out_layer_activation": "tanh"}],
                         ids=["RNN", "LSTM", "GRU", "GRU-2layer-bidir", "LSTM-init-act"])
def test_each_cell_builds_and_its_output_depends_on_earlier_states(keys):
    net = make_net(**keys)
    assert isinstance(net.rnn, getattr(torch.nn, keys["cell_type"]))
    x = torch.randn(5, 4, 3)
    pi, v = net(x)
    assert pi.shape == (5, 2) and v.shape == (5, 1)
    if keys.get("out_layer_activation") == "tanh":
        assert pi.abs().max() < 1
    earlier = x.clone()
    earlier[:, 0] += 1.0  # only the oldest state of the window changes
    pi2, _ = net(earlier)
    assert not torch.allclose(pi, pi2)
    # the batch is independent: changing one sample's history changes only its output
    one = x.clone()
    one[2, 1] += 1.0
    pi3, _ = net(one)
    assert torch.equal(pi3[[0, 1, 3, 4]], pi[[0, 1, 3, 4]]) and not torch.equal(pi3[2], pi[2])
    pi.sum().backward()
    assert all(p.grad is not None for n, p in net.named_parameters() if not n.startswith("tails.1"))


def test_bad_cell_type_is_a_located_spec_error():
    from looplab.errors import SpecError

    with pytest.raises(SpecError, match=r"agent\.net\.cell_type"):
        rnn_spec("ppo_rnn_cartpole", "agent.net.cell_type=LSMT")


# ---- the session loop (the CLI runs of both specs are in tests/experiment/test_cli_smoke.py) ---------
@pytest.mark.parametrize(("name", "overrides"), [
    ("ppo_rnn_cartpole", ["env.max_frame=240", "env.num_envs=2", "agent.algorithm.time_horizon=16",
                          "agent.algorithm.minibatch_size=16", "agent.algorithm.training_epoch=1"]),
    ("dqn_rnn_cartpole", ["env.max_frame=160", "env.num_envs=2", "agent.algorithm.training_start_step=32",
                          "agent.memory.batch_size=16", "agent.algorithm.training_iter=1"]),
], ids=["PPO-GRU", "DQN-LSTM"])
def test_same_seed_same_run_and_exact_resume(name, overrides, tmp_path, monkeypatch):
    """Windows cross log checkpoints mid-episode; a resumed run must match the straight one bit for bit."""
    from looplab.experiment import evaluation
    from looplab.experiment import session as session_mod
    from tests.experiment.test_determinism import assert_same_weights, frame, load_case, run

    monkeypatch.setattr(session_mod, "session_graphs", lambda *a, **k: [])
    monkeypatch.setattr(evaluation, "session_graphs", lambda *a, **k: [])
    torch.set_num_threads(1)
    spec = load_case(RNN_SPECS, name, overrides)
    a = run(spec, tmp_path / "a")
    df = frame(a)
    assert len(df) >= 3 and df["opt_step"].iloc[-1] > 0
    stop_at = len(df) - 1
    stopped = run(spec, tmp_path / "b", stop_at_log=stop_at)
    assert stopped.interrupted and len(stopped.rows) == stop_at
    resumed = run(spec, tmp_path / "b", resume=True)
    pd.testing.assert_frame_equal(df, frame(resumed), check_exact=True)
    assert_same_weights(a, resumed)
