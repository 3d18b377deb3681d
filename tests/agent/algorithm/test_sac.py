"""SoftActorCritic: tanh-squashed log-prob, soft targets, alpha loss, polyak update, CLI smoke and learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.algorithm.sac import squash
from looplab.agent.net.base import polyak_update
from looplab.agent.validate import validate_spec
from looplab.env import Clock, Env
from tests.agent.loop import step
from tests.conftest import ROOT, SLM_SPECS, only_run, run_cli


def _agent(raw: dict):
    spec = validate_spec(raw, spec_name="t")
    env = Env(spec, seed=0)
    return ALGORITHMS.get(spec.algorithm.name)(spec, env.info, Clock(num_envs=env.num_envs), 0), env


def _raw(env: str = "Pendulum-v1", pdtype: str = "Normal", **algo) -> dict:
    return {"agent": {"algorithm": {"name": "SoftActorCritic", "action_pdtype": pdtype, "gamma": 0.9,
                                    "training_start_step": 0, **algo},
                      "memory": {"name": "Replay", "batch_size": 8, "max_size": 100},
                      "net": {"type": "MLPNet", "hid_layers": [8], "polyak_coef": 0.5, "update_type": "polyak",
                              "gpu": False}},
            "env": {"name": env, "num_envs": 1, "max_frame": 100}, "meta": {"max_session": 1}}


def test_squashed_log_prob_matches_the_numerical_density():
    loc = torch.tensor([[0.3, -1.2]])
    log_std = torch.tensor([[-0.5, 0.2]])
    a, logp = squash(loc, log_std, torch.Generator().manual_seed(0))
    # density of a = tanh(u), u ~ N(loc, std), by change of variables computed independently per dim
    u = torch.atanh(a.double())
    std = log_std.double().exp()
    normal = -0.5 * ((u - loc.double()) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)
    ref = (normal - torch.log(1 - torch.tanh(u) ** 2)).sum(-1)
    assert torch.allclose(logp.double(), ref, atol=1e-4)
    # and a finite-difference check of the 1-d CDF: P(a in [x, x+h]) ~ p(x) h
    loc1, ls1 = torch.zeros(1, 1), torch.zeros(1, 1)
    x, h = 0.5, 1e-4
    ua, ub = math.atanh(x), math.atanh(x + h)
    prob = torch.distributions.Normal(0.0, 1.0).cdf(torch.tensor([ub, ua], dtype=torch.float64))
    dens = float(prob[0] - prob[1]) / h
    # at u = 0: log N(0) - log(1) = -0.5 log(2 pi)
    _, lp = squash(loc1, ls1, torch.Generator(), deterministic=True)
    assert float(lp) == pytest.approx(-0.5 * math.log(2 * math.pi), abs=1e-6)
    assert dens == pytest.approx(math.exp(-0.5 * ua**2) / math.sqrt(2 * math.pi) / (1 - x**2), rel=1e-3)


def test_soft_target_uses_the_twin_min_and_the_entropy_term():
    agent, env = _agent(_raw())
    env.close()
    r, term = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    q1, q2 = torch.tensor([5.0, 3.0]), torch.tensor([4.0, 7.0])
    logp = torch.tensor([-1.0, -2.0])
    y = agent.soft_target(r, term, (q1, q2), (None, logp), torch.tensor(0.5))
    # y = r + 0.9 * (1 - term) * (min(q1, q2) - 0.5 * logp)
    assert torch.allclose(y, torch.tensor([1.0 + 0.9 * (4.0 + 0.5), 2.0]))


@pytest.mark.parametrize("twin_q, q_of_action", [("min", (1.0, 3.0)), ("mean", (1.5, 3.5))])
def test_discrete_soft_target_is_an_exact_expectation(twin_q, q_of_action):
    agent, env = _agent(_raw("CartPole-v1", "Categorical", twin_q=twin_q))
    env.close()
    probs = torch.tensor([[0.25, 0.75]])
    logp = probs.log()
    q1, q2 = torch.tensor([[1.0, 4.0]]), torch.tensor([[2.0, 3.0]])
    y = agent.soft_target(torch.tensor([0.0]), torch.tensor([0.0]), (q1, q2), (probs, logp), torch.tensor(0.1))
    v = 0.25 * (q_of_action[0] - 0.1 * math.log(0.25)) + 0.75 * (q_of_action[1] - 0.1 * math.log(0.75))
    assert float(y) == pytest.approx(0.9 * v, rel=1e-6)


@pytest.mark.parametrize("env_name, pdtype, twin_q, expected", [
    ("CartPole-v1", "Categorical", "auto", "mean"), ("Pendulum-v1", "Normal", "auto", "min"),
    ("CartPole-v1", "Categorical", "min", "min"), ("Pendulum-v1", "Normal", "mean", "mean")])
def test_twin_q_auto_is_slm_labs_mean_for_discrete_and_min_for_continuous(env_name, pdtype, twin_q, expected):
    agent, env = _agent(_raw(env_name, pdtype, twin_q=twin_q))
    env.close()
    assert agent.twin_q == expected
    q1, q2 = torch.tensor([1.0, 6.0]), torch.tensor([3.0, 2.0])
    assert torch.equal(agent.twin(q1, q2), torch.tensor([1.0, 2.0]) if expected == "min" else torch.tensor([2.0, 4.0]))


def _discrete_batch(agent):
    g = torch.Generator().manual_seed(0)
    states = torch.randn(8, 4, generator=g)
    actions = torch.randint(0, 2, (8,), generator=g)
    return states, actions, torch.ones(8), torch.randn(8, 4, generator=g), torch.zeros(8)


@pytest.mark.parametrize("source", ["critic_forward", "fresh"])
def test_discrete_policy_loss_reads_the_critic_forward_or_a_fresh_one(source):
    agent, env = _agent(_raw("CartPole-v1", "Categorical", discrete_policy_q=source))
    env.close()
    states, actions, rewards, next_states, terms = _discrete_batch(agent)
    agent.critic_loss(states, actions, rewards, next_states, terms)
    q_then = ((agent.q1(states) + agent.q2(states)) / 2).detach()
    with torch.no_grad():  # the critic step moves the critics after their loss's forward
        for p in [*agent.q1.parameters(), *agent.q2.parameters()]:
            p.add_(0.5)
    q_now = ((agent.q1(states) + agent.q2(states)) / 2).detach()
    loss, _ = agent.actor_loss(states)
    with torch.no_grad():
        pi, logp = agent.policy(states, agent.rng.train)
        alpha = agent.alpha_tensor()
    expected = (pi * (alpha * logp - (q_then if source == "critic_forward" else q_now))).sum(-1).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert not torch.allclose(q_then, q_now)
    if source == "critic_forward":
        loss.backward()  # the reused values are detached: the policy loss reaches the actor only
        assert all(p.grad is None for p in agent.q1.parameters())
        assert any(p.grad is not None for p in agent.actor.parameters())


def test_entropy_penalty_against_its_moving_average():
    agent, env = _agent(_raw("CartPole-v1", "Categorical", entropy_penalty_coef=2.0))
    env.close()
    # first update: the average starts at the entropy itself, so no penalty; then it moves 1% toward each
    assert float(agent.entropy_penalty(torch.tensor(0.6))) == 0.0 and agent.entropy_ema == pytest.approx(0.6)
    assert float(agent.entropy_penalty(torch.tensor(0.4))) == pytest.approx(2.0 * 0.5 * (0.6 - 0.4) ** 2)
    assert agent.entropy_ema == pytest.approx(0.99 * 0.6 + 0.01 * 0.4)
    h = torch.tensor(0.5, requires_grad=True)
    agent.entropy_penalty(h).backward()  # d/dH beta/2 (ema - H)^2 = -beta (ema - H)
    assert float(h.grad) == pytest.approx(-2.0 * (0.99 * 0.6 + 0.01 * 0.4 - 0.5), rel=1e-5)
    resumed, env = _agent(_raw("CartPole-v1", "Categorical", entropy_penalty_coef=2.0))
    env.close()
    resumed.load_extra_state(agent.extra_state())  # the average goes with the checkpoint
    assert resumed.entropy_ema == agent.entropy_ema == pytest.approx(0.99 * (0.99 * 0.6 + 0.01 * 0.4) + 0.01 * 0.5)
    # in the policy loss: the loss with the penalty minus the loss without is the penalty
    states = _discrete_batch(agent)[0]
    agent.entropy_ema = 0.0
    with_penalty, mean_logp = agent.actor_loss(states)
    agent.config = agent.config.model_copy(update={"entropy_penalty_coef": 0.0})
    without, _ = agent.actor_loss(states)
    assert float((with_penalty - without).detach()) == pytest.approx(2.0 * 0.5 * float(mean_logp.mean()) ** 2, rel=1e-4)


def test_entropy_penalty_is_refused_for_continuous_actions():
    from looplab.errors import SpecError

    with pytest.raises(SpecError, match="discrete actions only") as e:
        _agent(_raw(entropy_penalty_coef=0.1))
    assert "agent.algorithm.entropy_penalty_coef" in str(e.value)


def test_alpha_loss_and_its_gradient_direction():
    agent, env = _agent(_raw())
    env.close()
    assert agent.target_entropy == -1.0  # -|A| for Pendulum
    with torch.no_grad():
        agent.log_alpha.fill_(math.log(2.0))
    mean_logp = torch.tensor([0.5, 1.5])  # entropy 1 below... log pi above -H_target: alpha must grow
    loss = agent.alpha_loss(mean_logp)
    assert float(loss) == pytest.approx(-2.0 * (1.0 - 1.0), abs=1e-6)
    loss = agent.alpha_loss(torch.tensor([2.0]))
    assert float(loss) == pytest.approx(-2.0 * (2.0 - 1.0))
    loss.backward()
    assert float(agent.log_alpha.grad) < 0  # gradient descent raises alpha when entropy is too low


def test_polyak_update_mixes_parameters():
    online, target = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        online.weight.fill_(1.0)
        target.weight.fill_(3.0)
    polyak_update(online, target, 0.25)
    assert torch.allclose(target.weight, torch.full_like(target.weight, 0.25 * 1.0 + 0.75 * 3.0))


def test_polyak_update_mixes_running_statistics_and_copies_the_batch_count():
    online, target = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        online.running_mean.fill_(2.0)
        online.num_batches_tracked.fill_(7)
    polyak_update(online, target, 0.5)
    assert torch.equal(target.running_mean, torch.full((2,), 1.0))  # 0.5 * 2 + 0.5 * 0
    assert int(target.num_batches_tracked) == 7


def test_random_actions_before_training_start_and_alpha_clamped():
    agent, env = _agent(_raw(training_start_step=50, log_alpha_max=0.1, alpha_lr=10.0))
    state = env.reset()
    a = agent.act(state)
    assert a.shape == (1, 1) and -1.0 <= a.min() and a.max() <= 1.0
    assert agent.memory.training_start_step == 50
    for _ in range(80):
        state = step(agent, env, state)
    env.close()
    assert agent.clock.opt_step > 0 and np.isfinite(agent.loss)
    assert -5.0 <= float(agent.log_alpha) <= 0.1 + 1e-6


def test_sac_smoke_runs_through_the_cli(data_dir):
    spec = SLM_SPECS / "benchmark_arc" / "sac" / "sac_classic_arc.yaml"
    run_cli("run", str(spec), "sac_pendulum_arc", "dev", "--set", "env.max_frame=1200", "--set",
            "agent.algorithm.training_start_step=800", "--set", "meta.log_frequency=400", "--quiet",
            data_dir=data_dir, check=True)
    run = only_run(data_dir)
    import pandas as pd

    df = pd.read_csv(next(run.glob("info/*session_df*.csv")))
    assert list(df["frame"]) == [400, 800, 1200]
    assert df["opt_step"].iloc[-1] > 0 and np.isfinite(df["loss"].iloc[-1])
    assert 0.0 < df["alpha"].iloc[-1] < 1.0 and np.isfinite(df["total_reward"].iloc[-1])


@pytest.mark.slow
def test_sac_learns_pendulum(tmp_path):
    """The tuned library spec gets the last episodes of Pendulum-v1 above -400 (random: about -1200)."""
    from looplab.experiment.session import Session
    from looplab.runfolder import RunPaths
    from looplab.spec.load import load_spec

    raw, _ = load_spec(str(ROOT / "looplab" / "spec" / "library" / "sac_pendulum.json"), "sac_pendulum")
    spec = validate_spec(raw, spec_name="sac_pendulum")
    torch.set_num_threads(1)
    session = Session(spec, RunPaths.create(tmp_path, "sac_pendulum"), 0, 0, seed=1)
    session.run()
    last = list(session.env.returns)[-6:]
    assert np.mean(last) > -400, last


def test_spectral_norm_bounds_the_critics_penultimate_linear_layer_only():
    raw = _raw(spectral_norm=True)
    raw["agent"]["net"]["hid_layers"] = [8, 8]
    agent, env = _agent(raw)
    env.close()
    for net in (agent.q1, agent.q2, agent.target_q1, agent.target_q2):
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        assert [torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in linears] == [False, True, False]
    raw = _raw(spectral_norm=True)
    raw["agent"]["net"]["hid_layers"] = []  # the output layer alone
    from looplab.errors import SpecError

    with pytest.raises(SpecError, match="penultimate"):
        _agent(raw)


def test_alpha_takes_the_actors_optimizer_and_lr_schedule_as_in_slm_lab():
    raw = _raw(alpha_lr=0.01)
    raw["agent"]["net"] |= {"optim_spec": {"name": "AdamW", "lr": 0.001, "weight_decay": 0.05},
                            "lr_scheduler_spec": {"name": "LinearToZero", "frame": 100}}
    agent, env = _agent(raw)
    env.close()
    alpha = agent.optimizers["alpha"]
    assert type(alpha.optim) is torch.optim.AdamW and alpha.lr == pytest.approx(0.01)
    assert alpha.optim.param_groups[0]["weight_decay"] == 0.05 and alpha.clip_grad_val is None
    assert alpha.lr_scheduler is not None
    agent.step_lr_schedulers()
    assert 0.0 < alpha.lr < 0.01  # decays with the actor's
    assert agent.optimizers["net"].lr < 0.001


@pytest.mark.parametrize("weights", [False, True])
def test_prioritized_replay_gets_the_critics_td_errors_and_weights_their_losses(weights):
    raw = _raw("CartPole-v1", "Categorical")
    raw["agent"]["memory"] = {"name": "PrioritizedReplay", "batch_size": 8, "max_size": 100, "alpha": 0.6,
                              "epsilon": 0.0001, "importance_weights": weights}
    agent, env = _agent(raw)
    state = env.reset()
    for _ in range(12):
        state = step(agent, env, state)  # trains from the first transition on (training_start_step 0)
    env.close()
    assert agent.clock.opt_step > 0
    mem = agent.memory
    new = mem.slm_lab_priority
    stored = mem.tree.get(np.arange(mem.size))
    assert (stored < new).any()  # sampled slots left the new-item priority for (|TD error| + eps)^alpha
    # the same rule by hand on a fresh batch: priorities from |min(Q1, Q2) - y| of the critic loss, and the
    # loss weighted per sample where the memory gives importance weights
    batch = mem.sample()
    states, actions, rewards, next_states, terms = agent.batch_tensors(batch)
    agent.batch_weights = agent.to_tensor(batch["weights"]) if weights else None
    loss = agent.critic_loss(states, actions, rewards, next_states, terms)
    with torch.no_grad():
        q1 = agent.q1(states).gather(-1, actions[:, None]).squeeze(-1)
        q2 = agent.q2(states).gather(-1, actions[:, None]).squeeze(-1)
        probs = torch.softmax(agent.actor(next_states), -1)
        tq = (agent.target_q1(next_states) + agent.target_q2(next_states)) / 2  # discrete: the twins' mean
        v = (probs * (tq - agent.alpha * probs.log())).sum(-1)
        y = rewards + 0.9 * (1 - terms) * v
    assert torch.allclose(agent.td_errors, (torch.min(q1, q2) - y).abs(), atol=1e-5)
    assert ("weights" in batch) is weights
    w = agent.to_tensor(batch["weights"]) if weights else torch.ones(8)
    assert float(loss.detach()) == pytest.approx(float((w * (q1 - y) ** 2).mean() + (w * (q2 - y) ** 2).mean()), rel=1e-4)
    if weights:
        assert float(w.max()) == pytest.approx(1.0) and float(w.min()) < 1.0


def test_symlog_compresses_what_the_critic_loss_compares():
    agent, env = _agent(_raw(symlog=True))
    env.close()
    q1, q2, y = torch.tensor([3.0, -1.0]), torch.tensor([0.0, 2.0]), torch.tensor([10.0, -5.0])

    def sl(x):
        return math.copysign(math.log1p(abs(x)), x)
    expected = (sum((sl(a) - sl(b)) ** 2 for a, b in zip([3.0, -1.0], [10.0, -5.0], strict=True)) / 2
                + sum((sl(a) - sl(b)) ** 2 for a, b in zip([0.0, 2.0], [10.0, -5.0], strict=True)) / 2)
    loss = agent.td_loss(q1, q2, torch.zeros(2, 1), y)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    plain, env = _agent(_raw())
    env.close()
    assert float(plain.td_loss(q1, q2, torch.zeros(2, 1), y)) == pytest.approx(
        float(((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean()), rel=1e-6)
