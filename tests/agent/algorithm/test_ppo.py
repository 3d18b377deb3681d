"""PPO: the clipped objective and the percentile advantage normalizer against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from looplab.agent.algorithm.ppo import PercentileNormalizer, clipped_surrogate_loss
from looplab.experiment.run import prepare
from tests.agent.loop import make_agent, step
from tests.conftest import SLM_SPECS


def test_clipped_objective_against_hand_computed_values():
    ratio = torch.tensor([0.5, 0.9, 1.1, 1.5, 0.5, 1.5])
    adv = torch.tensor([1.0, 1.0, 1.0, 1.0, -2.0, -2.0])
    # eps 0.2: clip(r) = [0.8, 0.9, 1.1, 1.2, 0.8, 1.2]
    # A > 0: min(rA, clip(r)A) = [0.5, 0.9, 1.1, 1.2]   (a ratio above 1 + eps earns no more)
    # A < 0: min(-1.0, -1.6) = -1.6 (r = 0.5: the clipped term is the pessimistic one), min(-3.0, -2.4) = -3.0
    expected = -(0.5 + 0.9 + 1.1 + 1.2 - 1.6 - 3.0) / 6
    assert float(clipped_surrogate_loss(ratio, adv, 0.2)) == pytest.approx(expected, abs=1e-6)


def test_clipped_objective_has_no_gradient_outside_the_trust_region():
    ratio = torch.tensor([1.5, 0.5, 1.05], requires_grad=True)
    clipped_surrogate_loss(ratio, torch.tensor([1.0, -1.0, 1.0]), 0.2).backward()
    # clipped (A > 0, r > 1 + eps) and (A < 0, r < 1 - eps): zero gradient; inside: -A / n
    assert torch.allclose(ratio.grad, torch.tensor([0.0, 0.0, -1.0 / 3]))


def test_percentile_normalizer_tracks_the_spread_and_never_scales_up():
    norm = PercentileNormalizer(decay=0.5)
    values = torch.arange(101, dtype=torch.float32)  # p5 = 5, p95 = 95
    norm.update(values)
    assert (norm.perc5, norm.perc95) == pytest.approx((2.5, 47.5))  # 0.5 * 0 + 0.5 * p
    assert torch.allclose(norm.normalize(values), values / 45.0)
    small = PercentileNormalizer()
    small.update(torch.tensor([0.0, 0.1]))
    assert torch.equal(small.normalize(torch.tensor([0.2])), torch.tensor([0.2]))  # spread < 1: divided by 1


def test_percentile_normalization_runs_and_its_state_round_trips():
    _, spec, _ = prepare(str(SLM_SPECS / "benchmark/ppo/ppo_cartpole.json"), "ppo_cartpole", None,
                         ["env.max_frame=200", "agent.algorithm.time_horizon=32",
                          "agent.algorithm.normalize_advantages=percentile"])
    agent, env = make_agent(spec)
    state = env.reset()
    while agent.clock.opt_step == 0:
        state = step(agent, env, state)
    env.close()
    assert agent.percentile is not None and agent.percentile.perc95 > agent.percentile.perc5
    extra = agent.extra_state()
    other, _ = make_agent(spec, seed=1)
    other.load_extra_state(extra)
    assert vars(other.percentile) == vars(agent.percentile)


def _pendulum_agent(*overrides: str):
    _, spec, _ = prepare(str(SLM_SPECS / "benchmark/a2c/a2c_gae_pendulum.json"), "a2c_gae_pendulum", None,
                         ["env.max_frame=200", *overrides])
    agent, env = make_agent(spec)
    env.close()
    return agent


def test_running_std_merges_batches_and_floors_at_one():
    from looplab.agent.algorithm.actor_critic import RunningStd, scale_by
    norm = RunningStd()
    norm.update(torch.tensor([0.0, 4.0]).numpy())
    norm.update(torch.tensor([8.0, 12.0]).numpy())
    assert norm.var == pytest.approx(20.0, rel=1e-4)  # population variance of 0, 4, 8, 12
    assert norm.std == pytest.approx(20.0**0.5, rel=1e-4)
    assert torch.allclose(scale_by(torch.tensor([9.0, 100.0, -100.0]), norm.std),
                          torch.tensor([9.0 / 20.0**0.5, 10.0, -10.0]), atol=1e-4)  # clamped at ±10
    small = RunningStd()
    small.update(torch.tensor([0.1, 0.2]).numpy())
    assert small.std == 1.0


def test_v_targets_loss_mode_compares_raw_values_divided_by_the_running_std():
    """SLM Lab's normalize_v_targets (the default mode): V is in return units; the loss divides prediction
    and target by the std of the targets seen so far, this batch included, each clamped to ±10."""
    agent = _pendulum_agent()
    assert agent.config.normalize_v_targets and agent.config.normalize_v_targets_mode == "loss"
    states = torch.zeros(4, 3)
    raw = agent.value_out(states).detach()
    assert torch.equal(agent.value(states).detach(), raw)  # no scaling of the head's output
    target = torch.tensor([0.0, -4.0, -8.0, -12.0])  # population std sqrt(20)
    loss = agent.value_loss(states, target).detach()
    std = 20.0**0.5
    expected = torch.nn.functional.mse_loss(raw / std, target / std)  # the spec's loss is MSE
    assert float(loss) == pytest.approx(float(expected), rel=1e-4)
    assert agent.v_norm.var == pytest.approx(20.0, rel=1e-4)  # the statistics took this batch


def test_v_targets_output_mode_scales_the_head_by_the_running_std():
    agent = _pendulum_agent("agent.algorithm.normalize_v_targets_mode=output")
    agent.v_norm.update(torch.tensor([0.0, -4.0, -8.0, -12.0]).numpy())
    states = torch.zeros(4, 3)
    raw = agent.value_out(states).detach()
    assert torch.allclose(agent.value(states).detach(), raw * 20.0**0.5, rtol=1e-4)
    target = torch.tensor([-2.0, -4.0, -6.0, -8.0])
    loss = agent.value_loss(states, target).detach()
    expected = torch.nn.functional.mse_loss(raw, target / 20.0**0.5)  # target in std units, head as is
    assert float(loss) == pytest.approx(float(expected), rel=1e-4)
    assert agent.v_norm.var == pytest.approx(20.0, rel=1e-4)  # value_loss leaves the statistics alone


def _minibatch_inputs(agent, env, n: int = 64):
    """One filled rollout's first `n` items as `minibatch_losses` takes them (v_norm not updated)."""
    state = env.reset()
    train = agent.train
    agent.train = lambda: 0.0
    for _ in range(agent.config.time_horizon):
        state = step(agent, env, state)
    agent.train = train
    batch = agent.memory.sample()
    states, actions = agent.flat_batch(batch)
    v, advs, v_targets = agent.estimate(batch, states)
    with torch.no_grad():
        logp_old = agent.make_pd(agent.policy_out(states), agent.log_std).log_prob(actions) - 0.05
    return states[:n], actions[:n], logp_old[:n], advs[:n], v_targets[:n], v[:n]


@pytest.mark.parametrize("spec_file, spec_name, overrides", [
    ("benchmark/ppo/ppo_cartpole.json", "ppo_cartpole", ["agent.algorithm.time_horizon=32"]),
    ("benchmark/ppo/ppo_pendulum.json", "ppo_pendulum",
     ["agent.algorithm.time_horizon=32", "env.num_envs=2", "agent.algorithm.normalize_v_targets=true",
      "agent.algorithm.clip_vloss=true", "agent.algorithm.val_loss_coef=0.25"]),
])
def test_compiled_minibatch_step_equals_the_eager_one(spec_file, spec_name, overrides):
    """`compile: true` runs the same math: losses and every parameter's gradient as the eager step gives
    them (to float rounding: the compiled kernels fuse and reorder), for a discrete and a continuous policy
    (value clipping and normalized targets included), one compiled function per agent."""
    _, spec, _ = prepare(str(SLM_SPECS / spec_file), spec_name, None,
                         ["env.max_frame=400", "agent.algorithm.compile=true", *overrides])
    agent, env = make_agent(spec)
    inputs = _minibatch_inputs(agent, env)
    env.close()
    assert agent.minibatch is not agent.minibatch_losses  # the compiled callable
    from torch._dynamo.utils import counters
    std = 3.5 if agent.v_norm is not None else None
    params = [p for net in (agent.actor, agent.critic) for p in net.parameters()]
    results = []
    for fn, scalar in ((agent.minibatch_losses, float), (agent.minibatch, torch.tensor)):
        for p in params:
            p.grad = None
        losses = fn(*inputs, scalar(0.2), scalar(0.01), None if std is None else scalar(std))
        (losses[0] + losses[1]).backward()
        results.append(([float(x.detach()) for x in losses], [p.grad.clone() for p in params]))
    (eager_losses, eager_grads), (compiled_losses, compiled_grads) = results
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-5, abs=1e-6)
    for g_eager, g_compiled in zip(eager_grads, compiled_grads, strict=True):
        assert torch.allclose(g_compiled, g_eager, rtol=1e-4, atol=1e-6)
    assert any(float(g.abs().sum()) > 0 for g in compiled_grads)
    assert counters["stats"]["unique_graphs"] >= 1 and not counters["graph_break"]  # compiled whole, no fallback


def test_compile_with_gsde_is_refused_naming_the_key():
    from looplab.errors import SpecError
    with pytest.raises(SpecError, match="use_sde") as e:
        prepare(str(SLM_SPECS / "benchmark/ppo/ppo_pendulum.json"), "ppo_pendulum", None,
                ["agent.algorithm.compile=true", "agent.algorithm.use_sde=true"])
    assert "agent.algorithm.compile" in str(e.value)
