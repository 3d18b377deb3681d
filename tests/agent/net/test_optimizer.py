"""The guarded optimizer step: one backward for separate actor and critic nets gives the gradients and
parameters of two; the fast gradient clipping equals torch's bit for bit; non-finite guards."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from looplab.agent.net.base import Optimizer, all_finite, clip_grad_norm, fused_step, step_jointly
from looplab.experiment.run import prepare
from tests.agent.loop import make_agent, step
from tests.conftest import ROOT


def ppo_agent(optim: str = "Adam"):
    """The PPO demo (separate actor and critic, use_same_optim, per-net clipping) with a filled rollout."""
    _, spec, _ = prepare(str(ROOT / "looplab/spec/library/demo.json"), "ppo_cartpole", None,
                         ["agent.algorithm.time_horizon=16", "agent.algorithm.minibatch_size=32",
                          f"agent.net.optim_spec.name={optim}"])
    agent, env = make_agent(spec)
    state = env.reset()
    for _ in range(16):
        state = step(agent, env, state)  # the 16th step trains once: the nets have moved and Adam has state
    env.close()
    assert agent.critic is not None and agent.optimizers["net"].clip_grad_val == 0.5
    return agent


def minibatch_losses(agent):
    """A PPO-style policy loss (actor only) and value loss (critic only) on random states."""
    g = torch.Generator().manual_seed(3)
    states = torch.randn(32, 4, generator=g)
    actions = torch.randint(0, 2, (32,), generator=g)
    advs, targets = torch.randn(32, generator=g), torch.randn(32, generator=g) * 10
    pd = agent.make_pd(agent.policy_out(states))
    policy_loss = -(pd.log_prob(actions) * advs).mean() - 0.01 * pd.entropy().mean()
    val_loss = 0.5 * agent.value_loss(states, targets)
    return policy_loss, val_loss


def snapshot(agent):
    return {f"{k}.{n}": (p.detach().clone(), None if p.grad is None else p.grad.clone())
            for k, net in agent.nets().items() for n, p in net.named_parameters()}


@pytest.mark.parametrize("optim", ["Adam", "AdamW"])
def test_one_backward_gives_the_gradients_and_parameters_of_two(optim):
    joint = ppo_agent(optim)
    separate = copy.deepcopy(joint)
    # two backward passes, one per optimizer (what the code did before)
    policy_loss, val_loss = minibatch_losses(separate)
    assert separate.optimizers["net"].step(policy_loss)
    assert separate.optimizers["critic_net"].step(val_loss)
    # one backward of the summed loss, then each optimizer clips its own gradients and steps
    policy_loss, val_loss = minibatch_losses(joint)
    assert joint.step_optims({"net": policy_loss, "critic_net": val_loss}) == [True, True]
    assert joint.optimizers["net"].fused, "equal Adam settings: one fused optimizer step"
    before, after = snapshot(separate), snapshot(joint)
    assert before.keys() == after.keys()
    for name, (param, grad) in before.items():
        assert grad is not None, name
        assert torch.equal(grad, after[name][1]), f"gradient of {name}"
        assert torch.equal(param, after[name][0]), f"{name} after the step"
    for name in ("net", "critic_net"):
        s_state, j_state = (a.optimizers[name].optim.state_dict()["state"] for a in (separate, joint))
        for k, st in s_state.items():
            assert all(torch.equal(st[key], j_state[k][key]) for key in st), f"Adam state of {name}"
    assert joint.clock.opt_step == separate.clock.opt_step + 2  # Optimizer.step alone does not tick the clock


def params(agent):
    return [p.detach().clone() for net in agent.nets().values() for p in net.parameters()]


def test_fused_step_reads_the_state_a_checkpoint_loaded():
    straight = ppo_agent()
    reloaded = copy.deepcopy(straight)
    for agent in (straight, reloaded):
        agent.step_optims(dict(zip(("net", "critic_net"), minibatch_losses(agent), strict=True)))
    # loading replaces each torch optimizer's state dict object; the next fused step must use the loaded one
    for opt in reloaded.optimizers.values():
        opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    for agent in (straight, reloaded):
        for _ in range(2):
            agent.step_optims(dict(zip(("net", "critic_net"), minibatch_losses(agent), strict=True)))
    assert all(torch.equal(a, b) for a, b in zip(params(straight), params(reloaded), strict=True))
    for name in ("net", "critic_net"):
        states = [a.optimizers[name].optim.state_dict()["state"] for a in (straight, reloaded)]
        assert all(torch.equal(st[k], states[1][i][k]) for i, st in states[0].items() for k in st)


def test_unequal_settings_step_one_by_one_with_the_same_result():
    fused, alone = ppo_agent(), None
    fused.optimizers["critic_net"].optim.param_groups[0]["lr"] *= 2
    alone = copy.deepcopy(fused)
    fused.step_optims(dict(zip(("net", "critic_net"), minibatch_losses(fused), strict=True)))
    assert not fused_step(list(fused.optimizers.values()))
    pl, vl = minibatch_losses(alone)
    alone.optimizers["net"].step(pl)
    alone.optimizers["critic_net"].step(vl)
    assert all(torch.equal(a, b) for a, b in zip(params(fused), params(alone), strict=True))


def test_a_nonfinite_loss_skips_only_its_own_optimizer():
    agent = ppo_agent()
    actor_before = [p.detach().clone() for p in agent.actor.parameters()]
    critic_before = [p.detach().clone() for p in agent.critic.parameters()]
    policy_loss, val_loss = minibatch_losses(agent)
    steps = agent.clock.opt_step
    assert agent.step_optims({"net": policy_loss * math.nan, "critic_net": val_loss}) == [False, True]
    assert agent.optimizers["net"].nonfinite == 1 and agent.optimizers["critic_net"].nonfinite == 0
    assert agent.clock.opt_step == steps + 1
    assert all(torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(critic_before, agent.critic.parameters(), strict=True))


def test_clip_grad_norm_equals_torch_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    for scale in (1e-3, 1.0, 50.0):  # below and above the limit
        grads = [torch.randn(64, 4, generator=g) * scale, torch.randn(64, generator=g) * scale,
                 torch.randn(2, 64, generator=g) * scale]
        params = [torch.nn.Parameter(torch.zeros_like(x)) for x in grads]
        for p, x in zip(params, grads, strict=True):
            p.grad = x.clone()
        ours = [x.clone() for x in grads]
        expected_total = torch.nn.utils.clip_grad_norm_(params, 0.5)
        assert torch.equal(clip_grad_norm(ours, 0.5), expected_total)
        assert all(torch.equal(a, p.grad) for a, p in zip(ours, params, strict=True))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_all_finite_finds_one_bad_element(bad):
    grads = [torch.ones(3, 3), torch.full((5,), 1e30)]
    assert all_finite(grads) and all_finite([])
    grads[0][1, 2] = bad
    assert not all_finite(grads)


def test_a_nonfinite_gradient_skips_the_step_and_counts():
    from looplab.agent.net.base import NetConfig

    net = torch.nn.Linear(3, 1)
    opt = Optimizer(list(net.parameters()), NetConfig(type="MLPNet"), 1)
    before = [p.detach().clone() for p in net.parameters()]
    loss = torch.sqrt((net.weight * 0).sum())  # finite (0), its gradient is not: 0.5 / sqrt(0) * 0 = nan
    assert step_jointly([(opt, loss)]) == [False]
    assert opt.nonfinite == 1 and all(p.grad is None for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_clip_groups_bound_each_net_on_its_own():
    """Twin critics under one optimizer: clip_grad_val bounds each net's gradient norm, as SLM Lab clips
    each net; without groups the norm of all of them together is bounded."""
    from looplab.agent.net.base import NetConfig

    def grads_after_clip(groups: bool) -> tuple[float, float]:
        a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
        opt = Optimizer([a, b], NetConfig(type="MLPNet", clip_grad_val=1.0), 1,
                        clip_groups=[[a], [b]] if groups else None)
        a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0])  # norms 3 and 4, together 5
        assert opt.clip()
        return float(a.grad.norm()), float(b.grad.norm())

    assert grads_after_clip(groups=True) == pytest.approx((1.0, 1.0), rel=1e-5)
    assert grads_after_clip(groups=False) == pytest.approx((3.0 / 5.0, 4.0 / 5.0), rel=1e-5)


def test_clip_groups_skip_a_non_finite_gradient_in_any_net():
    from looplab.agent.net.base import NetConfig

    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = Optimizer([a, b], NetConfig(type="MLPNet", clip_grad_val=1.0), 1, clip_groups=[[a], [b]])
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([math.nan, 4.0])
    assert not opt.clip()
    assert a.grad is None and b.grad is None and opt.nonfinite == 1
