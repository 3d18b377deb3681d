"""Generalized state-dependent exploration: its std, its noise, when the noise is drawn, and its wiring."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.sde import VAR_EPS, StateDependentNoise
from looplab.env import Clock, Env
from looplab.errors import SpecError
from looplab.experiment.run import prepare
from tests.conftest import ROOT, run_cli

A2C_PENDULUM = ROOT / "looplab" / "spec" / "library" / "a2c_pendulum.json"


def test_the_std_of_an_action_is_the_root_of_the_squared_features_times_sigma_squared():
    sde = StateDependentNoise(2, 2, 0.0, -1)
    with torch.no_grad():
        sde.log_std.copy_(torch.tensor([[0.0, 0.0], [math.log(2.0), 0.0]]))  # sigma^2 = [[1, 1], [4, 1]]
    z = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    # var = z^2 @ sigma^2: [1 + 4*4, 1 + 4*1] = [17, 5]; zero features leave only VAR_EPS
    expected = 0.5 * torch.log(torch.tensor([[17.0, 5.0], [0.0, 0.0]]) + VAR_EPS)
    assert torch.allclose(sde.log_scale(z), expected)


def test_the_std_teaches_sigma_but_not_the_features():
    sde = StateDependentNoise(3, 1, -1.0, -1)
    z = torch.randn(4, 3, requires_grad=True)
    sde.log_scale(z).sum().backward()
    assert z.grad is None and sde.log_std.grad is not None and sde.log_std.grad.abs().sum() > 0


def test_noise_is_the_features_times_a_matrix_per_env_drawn_per_rollout_and_every_n_steps():
    g = torch.Generator().manual_seed(0)
    sde = StateDependentNoise(3, 2, math.log(0.5), sample_freq=2)
    z = torch.randn(4, 3)  # 4 envs
    draws = []
    for rollout, steps in ((0, 5), (1, 1)):
        for _ in range(steps):
            noise = sde.noise(z, rollout, g)
            draws.append(sde.matrices.clone())
            assert sde.matrices.shape == (4, 3, 2)
            expected = torch.stack([z[i] @ sde.matrices[i] for i in range(4)])
            assert torch.allclose(noise, expected, atol=1e-6)
    same = [torch.equal(a, b) for a, b in itertools.pairwise(draws)]
    # rollout 0: drawn at steps 0, 2, 4; rollout 1: drawn at its first step
    assert same == [True, False, True, False, False]
    # drawn with std sigma: 0.5
    big = StateDependentNoise(50, 40, math.log(0.5), -1)
    big.noise(torch.ones(20, 50), 0, g)
    assert big.matrices.std().item() == pytest.approx(0.5, rel=0.02)


def test_one_draw_per_rollout_without_a_sample_frequency():
    g = torch.Generator().manual_seed(1)
    sde = StateDependentNoise(2, 1, 0.0, -1)
    z = torch.ones(2, 2)
    first = sde.noise(z, 7, g)
    assert all(torch.equal(sde.noise(z, 7, g), first) for _ in range(10))
    assert not torch.equal(sde.noise(z, 8, g), first)


def agent_for(*sets: str):
    _, spec, _ = prepare(str(A2C_PENDULUM), "a2c_pendulum", None, list(sets))
    env = Env(spec, 0)
    clock = Clock(num_envs=env.num_envs)
    return ALGORITHMS.get(spec.algorithm.name)(spec, env.info, clock, 0), env


def test_an_a2c_agent_acts_with_the_mean_plus_that_noise_and_scores_it_under_the_state_dependent_normal():
    agent, env = agent_for("agent.algorithm.use_sde=true", "agent.net.log_std_init=-1", "env.num_envs=3")
    try:
        state = env.reset()
        action = agent.act(state)
        x = torch.as_tensor(state, dtype=torch.float32)
        with torch.no_grad():
            z = agent.actor.body(x)
            mean = agent.actor.tails[0](z)
            noise = torch.bmm(z.unsqueeze(1), agent.sde.matrices).squeeze(1)
        assert np.allclose(agent.sampled_action, (mean + noise).numpy(), atol=1e-6)
        assert np.allclose(action, np.clip(agent.sampled_action, -1, 1))
        # the loss's distribution: Normal(mean, sqrt(z^2 @ sigma^2)), over the same forward's features
        a = torch.as_tensor(agent.sampled_action)
        with torch.no_grad():
            pd = agent.make_pd(agent.policy_out(x))
            std = torch.sqrt(z.pow(2) @ torch.exp(agent.sde.log_std).pow(2) + VAR_EPS)
        want = torch.distributions.Normal(mean, std).log_prob(a).sum(-1)
        assert torch.allclose(pd.log_prob(a), want, atol=1e-5)
        assert agent.sde.log_std.shape == (64, 1)
        assert agent.sde.log_std[0, 0].item() == -1.0
        # sigma is trained with the actor (it is one of the actor optimizer's parameters)
        params = agent.optimizers["net"].optim.param_groups[0]["params"]
        assert any(p is agent.sde.log_std for p in params)
        # greedy (not training): the mean itself
        agent.training = False
        assert np.allclose(agent.act(state), np.clip(mean.numpy(), -1, 1), atol=1e-6)
    finally:
        env.close()


@pytest.mark.parametrize(("sets", "key"), [
    (["env.name=CartPole-v1"], "agent.algorithm.use_sde"),
    (["agent.algorithm.action_pdtype=Beta"], "agent.algorithm.action_pdtype"),
    (["agent.algorithm.sde_sample_freq=0"], "agent.algorithm.sde_sample_freq"),
])
def test_a_spec_where_sde_cannot_work_is_refused_naming_the_key(sets, key):
    with pytest.raises(SpecError, match=key.replace(".", r"\.")):
        agent_for("agent.algorithm.use_sde=true", *sets)


def test_the_cli_refuses_sde_on_discrete_actions_in_one_line(data_dir):
    proc = run_cli("run", str(A2C_PENDULUM), "a2c_pendulum", "train", "--set", "agent.algorithm.use_sde=true",
                   "--set", "env.name=CartPole-v1", data_dir=data_dir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "agent.algorithm.use_sde" in proc.stderr
    assert not list(data_dir.iterdir())
