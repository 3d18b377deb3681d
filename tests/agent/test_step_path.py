"""The per-step shortcuts equal what they replace: target-net copies, acting without the log-prob."""

from __future__ import annotations

import torch

from looplab.agent.algorithm.sac import squash
from looplab.agent.net.base import copy_weights
from looplab.agent.policy import sample, sample_logits


def test_copy_weights_equals_load_state_dict_with_buffers():
    def net():
        return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))

    src, by_copy, by_load = net(), net(), net()
    src.train()(torch.randn(8, 3))  # running statistics and num_batches_tracked move
    copy_weights(src, by_copy)
    by_load.load_state_dict(src.state_dict())
    a, b = by_copy.state_dict(), by_load.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["1.num_batches_tracked"]) == 1


def test_acting_without_the_log_prob_samples_the_same_action():
    loc, log_std = torch.randn(5, 2), torch.randn(5, 2)
    with_logp, logp = squash(loc, log_std, torch.Generator().manual_seed(0))
    without, none = squash(loc, log_std, torch.Generator().manual_seed(0), with_logp=False)
    assert torch.equal(with_logp, without) and logp.shape == (5,) and none is None


def test_drawing_from_logits_equals_drawing_from_the_categorical():
    # the acting path skips building torch's Categorical; the draws from one generator state must match
    logits = torch.randn(4096, 3) * 3.0
    fast = sample_logits(logits, torch.Generator().manual_seed(1))
    slow = sample(torch.distributions.Categorical(logits=logits, validate_args=False), torch.Generator().manual_seed(1))
    assert torch.equal(fast, slow) and fast.shape == (4096,)
    shaped = sample_logits(logits.view(64, 64, 3), torch.Generator().manual_seed(1))
    assert shaped.shape == (64, 64) and torch.equal(shaped.flatten(), fast)


def test_the_categorical_log_prob_equals_torchs_bit_for_bit_and_its_gradient_too():
    from looplab.agent.policy import Categorical, make_pd

    logits = torch.cat([torch.randn(500, 4) * 4.0, torch.tensor([[60.0, -60.0, 0.0, -1e30]])])  # extremes too
    actions = torch.randint(0, 4, (501,), generator=torch.Generator().manual_seed(0))
    grads = []
    for cls in (Categorical, torch.distributions.Categorical):
        x = logits.clone().requires_grad_()
        pd = cls(logits=x, validate_args=False)
        logp = pd.log_prob(actions)
        (logp.sum() + pd.entropy().sum()).backward()
        grads.append((logp.detach(), x.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])
    pd = make_pd("Categorical", logits)
    assert isinstance(pd, Categorical)
    many = torch.randint(0, 4, (3, 501))  # a sample shape in front: torch's broadcasting path
    assert torch.equal(pd.log_prob(many), torch.distributions.Categorical(logits=logits).log_prob(many))


def test_ppo_and_a2c_act_through_the_logits_draw(monkeypatch):
    import numpy as np

    from looplab.agent.algorithm import ALGORITHMS, ppo, reinforce
    from looplab.agent.validate import validate_spec
    from looplab.env import Clock, Env
    from looplab.spec import load_spec

    for file_, name, module in (("demo.json", "ppo_cartpole", ppo), ("a2c_cartpole.json", "a2c_cartpole", reinforce)):
        raw, file = load_spec(file_, name)
        spec = validate_spec(raw, file, spec_name=name)
        env = Env(spec, 0)
        agent = ALGORITHMS.get(spec.algorithm.name)(spec, env.info, Clock(num_envs=env.num_envs), 0)
        calls = []
        monkeypatch.setattr(module, "sample_logits", lambda out, g, calls=calls: calls.append(out) or out.argmax(-1))
        action = agent.act(env.reset())
        env.close()
        assert len(calls) == 1 and calls[0].shape == (env.num_envs, 2), name
        assert isinstance(action, np.ndarray) and action.shape == (env.num_envs,)
