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


def test_discrete_soft_target_is_an_exact_expectation():
    agent, env = _agent(_raw("CartPole-v1", "Categorical"))
    env.close()
    probs = torch.tensor([[0.25, 0.75]])
    logp = probs.log()
    q1, q2 = torch.tensor([[1.0, 4.0]]), torch.tensor([[2.0, 3.0]])
    y = agent.soft_target(torch.tensor([0.0]), torch.tensor([0.0]), (q1, q2), (probs, logp), torch.tensor(0.1))
    v = 0.25 * (1.0 - 0.1 * math.log(0.25)) + 0.75 * (3.0 - 0.1 * math.log(0.75))
    assert float(y) == pytest.approx(0.9 * v, rel=1e-6)


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
