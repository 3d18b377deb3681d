"""TD targets of SARSA, DQN and Double DQN against hand-computed values (terminated vs truncated);
A2C n-step advantages; action policy statistics; save-and-reload round trips of every algorithm."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.algorithm.sarsa import sarsa_next_actions
from looplab.agent.policy import boltzmann, epsilon_greedy
from looplab.env import Clock, Env
from looplab.experiment.run import prepare
from tests.agent.algorithm.test_discrete_specs import run_frames
from tests.conftest import SLM_SPECS

DQN_FILE = str(SLM_SPECS / "benchmark/dqn/dqn_cartpole.json")


class FixedQ(torch.nn.Module):
    """Q(s) = a lookup by the first state feature (an integer id)."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)

    def forward(self, x):
        return self.table[x[:, 0].long()]


def make_agent(name: str, algo_name: str, overrides=()):
    _, spec, _ = prepare(DQN_FILE, name, None, ["env.max_frame=1000", f"agent.algorithm.name={algo_name}",
                                                *overrides])
    env = Env(spec, 0)
    agent = ALGORITHMS.get(algo_name)(spec, env.info, Clock(num_envs=env.num_envs), 0)
    env.close()
    return agent


def transition_batch():
    # ids: next states 1 and 2; rewards 1; transition 0 terminated, 1 truncated (bootstraps), 2 ordinary
    return {"next_states": np.array([[1, 0, 0, 0], [2, 0, 0, 0], [1, 0, 0, 0]], dtype=np.float32),
            "rewards": np.array([1.0, 1.0, 1.0], dtype=np.float32),
            "terminateds": np.array([1.0, 0.0, 0.0], dtype=np.float32),
            "truncateds": np.array([0.0, 1.0, 0.0], dtype=np.float32)}


@pytest.mark.parametrize(("algo", "expected", "extra"), [
    # online Q(1) = [1, 5], Q(2) = [4, 2]; target Q(1) = [3, 0], Q(2) = [7, 9]; gamma 0.5
    ("VanillaDQN", [1.0, 1 + 0.5 * 4, 1 + 0.5 * 5], []),  # max online
    ("DQN", [1.0, 1 + 0.5 * 9, 1 + 0.5 * 3], ["agent.algorithm.double_q=false"]),  # max target
    ("DQN", [1.0, 1 + 0.5 * 7, 1 + 0.5 * 0], []),  # SLM Lab's DQN: target at online argmax
    ("DoubleDQN", [1.0, 1 + 0.5 * 7, 1 + 0.5 * 0], []),  # target at online argmax
])
def test_dqn_targets(algo, expected, extra):
    overrides = [] if algo != "VanillaDQN" else ["agent.net.update_type=null", "agent.net.update_frequency=null"]
    agent = make_agent("dqn_epsilon_greedy_cartpole", algo, [*overrides, *extra])
    agent.gamma = 0.5
    agent.net = FixedQ([[0, 0], [1, 5], [4, 2]])
    if agent.target_net is not None:
        agent.target_net = FixedQ([[0, 0], [3, 0], [7, 9]])
    np.testing.assert_allclose(agent.targets(transition_batch()).numpy(), expected)


def test_sarsa_next_actions_and_target():
    actions = np.array([[0, 1], [1, 1], [0, 0]])
    done = np.array([[0, 1], [0, 0], [0, 0]])
    policy = np.full((3, 2), 7)
    # a'[t] = a[t+1] inside an episode; the policy's action after an episode end and at the batch end
    np.testing.assert_array_equal(sarsa_next_actions(actions, done, policy), [[1, 7], [0, 0], [7, 7]])


def test_sarsa_train_uses_stored_next_action_and_cuts_on_terminated():
    _, spec, _ = prepare(str(SLM_SPECS / "benchmark/sarsa/sarsa_cartpole.json"), "sarsa_epsilon_greedy_cartpole",
                         None, ["env.max_frame=1000", "env.num_envs=1", "agent.algorithm.training_frequency=3"])
    env = Env(spec, 0)
    agent = ALGORITHMS.get("SARSA")(spec, env.info, Clock(num_envs=1), 0)
    env.close()
    agent.gamma = 0.5
    agent.net = FixedQ([[0, 0], [1, 5], [4, 2], [3, 6]])
    agent.config.action_policy = "epsilon_greedy"
    agent.explore_var.spec = None
    agent.explore_var.default = 0.0  # greedy policy for the boundary actions
    seen = {}

    def fake_td_loss(states, actions, targets, weights=None):
        seen["targets"] = targets.numpy()
        return (agent.net.table.sum() * 0 + targets.sum() * 0).requires_grad_(), targets

    agent.td_loss = fake_td_loss
    agent.step_optim = lambda name, loss: True
    s = lambda i: np.array([[i, 0, 0, 0]], dtype=np.float32)  # noqa: E731
    # steps: (s1,a1)->s2 ; (s2,a0)->s3 truncated ; (s1,a1)->s2 terminated
    for st, a, nxt, term, trunc in ((1, 1, 2, 0, 0), (2, 0, 3, 0, 1), (1, 1, 2, 1, 0)):
        agent.memory.add(s(st), np.array([a]), np.array([1.0]), s(nxt), np.array([term]), np.array([trunc]))
    agent.train()
    # t0: a' = stored a1=0 at s2 -> Q(2,0)=4 ; t1 truncated: greedy at s3 -> 6 ; t2 terminated -> no bootstrap
    np.testing.assert_allclose(seen["targets"], [1 + 0.5 * 4, 1 + 0.5 * 6, 1.0])


def test_epsilon_greedy_rate_and_one_coin_per_env():
    g = torch.Generator().manual_seed(0)
    q = torch.tensor([[0.0, 1.0, 0.0, 0.0]]).repeat(20000, 1)
    a = epsilon_greedy(q, 0.4, g)
    # non-greedy share = eps * 3/4
    assert abs((a != 1).float().mean().item() - 0.3) < 0.015
    assert 0 < (a != 1).sum() < len(a)  # coins differ across envs
    assert (epsilon_greedy(q, 0.0, g) == 1).all()


def test_boltzmann_temperature():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([[0.0, 1.0]]).repeat(20000, 1)
    for tau in (0.5, 1.0, 4.0):
        p1 = boltzmann(logits, tau, g).float().mean().item()
        expected = 1 / (1 + np.exp(-1 / tau))
        assert abs(p1 - expected) < 0.015


OFF_POLICY = ("agent.algorithm.training_start_step=32", "agent.memory.batch_size=16")
SPECS = {
    "Reinforce": ("benchmark/reinforce/reinforce_cartpole.json", "reinforce_cartpole"),
    "SARSA": ("benchmark/sarsa/sarsa_cartpole.json", "sarsa_epsilon_greedy_cartpole"),
    "VanillaDQN": ("benchmark/dqn/dqn_cartpole.json", "vanilla_dqn_boltzmann_cartpole"),
    "DQN": ("benchmark/dqn/dqn_cartpole.json", "dqn_epsilon_greedy_cartpole"),
    "DoubleDQN": ("benchmark/dqn/dqn_cartpole.json", "ddqn_per_boltzmann_cartpole"),
    "ActorCritic": ("benchmark/a2c/a2c_gae_cartpole.json", "a2c_gae_cartpole"),
    "PPOSIL": ("benchmark/sil/ppo_sil_cartpole.json", "ppo_sil_cartpole"),
    "PPO": ("benchmark/ppo/ppo_cartpole.json", "ppo_cartpole"),
    "SoftActorCritic": ("benchmark/sac/sac_pendulum.json", "sac_pendulum", *OFF_POLICY),
    "CrossQ": ("benchmark/crossq/crossq_classic.yaml", "crossq_cartpole", *OFF_POLICY),
}


@pytest.mark.parametrize("algo", list(SPECS))
def test_save_and_reload_round_trip(algo):
    path, name, *overrides = SPECS[algo]
    _, spec, _ = prepare(str(SLM_SPECS / path), name, None, ["env.max_frame=300", *overrides])
    if getattr(spec.algorithm, "time_horizon", None):
        spec.algorithm.time_horizon = 16
    if getattr(spec.algorithm, "training_frequency", None):
        spec.algorithm.training_frequency = min(spec.algorithm.training_frequency, 8)
    agent, env = run_frames(spec, 300)
    assert agent.clock.opt_step > 0
    state = copy.deepcopy(agent.state_dict())
    other = ALGORITHMS.get(algo)(spec, env.info, agent.clock, 1)
    other.load_state_dict(state)
    for k, net in agent.nets().items():
        for p, q in zip(net.state_dict().values(), other.nets()[k].state_dict().values(), strict=True):
            assert torch.equal(p, q)
    states = np.random.default_rng(0).normal(size=(env.num_envs, *env.info.state_shape)).astype(np.float32)
    agent.training = other.training = False
    # epsilon-greedy / boltzmann stay stochastic at their end values: from the same restored `act` stream
    np.testing.assert_array_equal(agent.act(states), other.act(states))


def test_reinforce_with_episodic_memory_and_random_baseline():
    _, spec, _ = prepare(str(SLM_SPECS / "benchmark/reinforce/reinforce_cartpole.json"), "reinforce_cartpole",
                         None, ["env.max_frame=400", "agent.memory.name=OnPolicyReplay",
                                "agent.algorithm.training_frequency=2"])
    agent, _ = run_frames(spec, 400)
    assert agent.clock.opt_step > 0 and np.isfinite(agent.loss)
    _, spec, _ = prepare(str(SLM_SPECS / "benchmark/reinforce/reinforce_cartpole.json"), "reinforce_cartpole",
                         None, ["env.max_frame=200", "agent.algorithm.name=Random"])
    agent, env = run_frames(spec, 200)
    assert agent.clock.opt_step == 0 and env.episodes > 0


def test_q_mean_is_the_mean_q_of_the_state_actions_trained_on():
    """The `q_mean` column (divergence shows there first: Q above r_max / (1 - gamma)) is the mean of Q(s, a)
    over the batches of the last training call, before their gradient steps."""
    agent = make_agent("dqn_epsilon_greedy_cartpole", "DQN", ["agent.algorithm.training_iter=2",
                                                               "agent.algorithm.training_batch_iter=1"])
    agent.net = FixedQ([[1.0, 5.0], [4.0, 2.0], [0.0, 3.0]])
    agent.target_net = FixedQ([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    agent.optimizers = {}
    agent.step_optims = lambda losses: [True] * len(losses)  # the table is fixed: Q stays put
    batches = iter([
        {**transition_batch(), "states": np.array([[0, 0, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0]], dtype=np.float32),
         "actions": np.array([1, 0, 1])},  # Q(s, a): 5, 4, 3
        {**transition_batch(), "states": np.array([[0, 0, 0, 0]] * 3, dtype=np.float32),
         "actions": np.array([0, 0, 0])},  # 1, 1, 1
    ])
    agent.memory.sample = lambda: next(batches)
    assert np.isnan(agent.log_values()["q_mean"])
    agent.train()
    assert agent.log_values()["q_mean"] == pytest.approx((4.0 + 1.0) / 2)
    assert agent.extra_state()["q_mean"] == pytest.approx(2.5)
