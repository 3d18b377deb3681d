"""Every action distribution of reference §1.3 trains end to end in PPO and A2C (finite losses, valid actions)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.validate import validate_spec
from looplab.env import Clock, Env


class _MultiEnv(gym.Env):
    """A tiny env with a MultiDiscrete or MultiBinary action space: reward for matching a target."""

    def __init__(self, kind: str = "multi_discrete", render_mode: str | None = None):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.MultiDiscrete([3, 2]) if kind == "multi_discrete" else gym.spaces.MultiBinary(3)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        reward = float(np.sum(np.asarray(action) == 1))
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), reward, False, self.t >= 20, {}


gym.register("LoopLabTest/MultiDiscrete-v0", entry_point=_MultiEnv, kwargs={"kind": "multi_discrete"})
gym.register("LoopLabTest/MultiBinary-v0", entry_point=_MultiEnv, kwargs={"kind": "multi_binary"})


def _spec(algo: str, env: str, pdtype: str, log_std_init: float | None = None) -> dict:
    algorithm = {"name": algo, "action_pdtype": pdtype, "gamma": 0.99, "lam": 0.95,
                 "entropy_coef_spec": {"name": "no_decay", "start_val": 0.01}}
    if algo == "PPO":
        algorithm.update(clip_eps_spec={"name": "no_decay", "start_val": 0.2}, time_horizon=16, minibatch_size=16,
                         training_epoch=2)
    else:
        algorithm.update(training_frequency=16)
    net = {"type": "MLPNet", "hid_layers": [16], "shared": False, "use_same_optim": True,
           "optim_spec": {"name": "Adam", "lr": 1e-3}, "gpu": False}
    if log_std_init is not None:
        net["log_std_init"] = log_std_init
    return {"agent": {"algorithm": algorithm, "memory": {"name": "OnPolicyBatchReplay"}, "net": net},
            "env": {"name": env, "num_envs": 2, "max_frame": 64}, "meta": {"max_session": 1}}


def _run(raw: dict, frames: int = 64):
    spec = validate_spec(raw, spec_name="t")
    env = Env(spec, seed=0)
    clock = Clock(num_envs=env.num_envs)
    agent = ALGORITHMS.get(spec.algorithm.name)(spec, env.info, clock, 0)
    state = env.reset()
    actions = []
    while clock.frame < frames:
        action = agent.act(state)
        actions.append(action)
        obs, reward, term, trunc, next_state = env.step(action)
        agent.update(state, action, reward, next_state, term, trunc)
        state = obs
        clock.tick()
    env.close()
    return agent, env, np.stack(actions)


CASES = [
    ("Pendulum-v1", "Normal", None), ("Pendulum-v1", "Normal", 0.0), ("Pendulum-v1", "Beta", None),
    ("Pendulum-v1", "Gumbel", None), ("Pendulum-v1", "LogNormal", None), ("Pendulum-v1", "NormalTanh", None),
    ("LunarLanderContinuous-v3", "NormalTanh", 0.0),
    ("LunarLanderContinuous-v3", "MultivariateNormal", None), ("LunarLanderContinuous-v3", "Beta", None),
    ("LoopLabTest/MultiDiscrete-v0", "MultiCategorical", None), ("LoopLabTest/MultiBinary-v0", "Bernoulli", None),
]


A2C_CASES = [CASES[2], CASES[5], CASES[7]]


@pytest.mark.parametrize(("algo", "env", "pdtype", "log_std_init"),
                         [("PPO", *c) for c in CASES] + [("ActorCritic", *c) for c in A2C_CASES])
def test_pdtype_trains_end_to_end(algo, env, pdtype, log_std_init):
    agent, env_obj, actions = _run(_spec(algo, env, pdtype, log_std_init))
    assert np.isfinite(agent.loss), f"{pdtype}: loss {agent.loss}"
    assert agent.nonfinite == 0
    assert agent.clock.opt_step > 0
    space = env_obj.single_action_space
    if isinstance(space, gym.spaces.Box):
        assert actions.min() >= -1.0 and actions.max() <= 1.0
        assert actions.std() > 0.0
    else:
        assert all(space.contains(a) for a in actions.reshape(-1, *space.shape))
    if log_std_init is not None:
        assert agent.log_std is not None and agent.log_std.shape == (env_obj.info.action_dim,)


def test_beta_covers_the_whole_action_range():
    _, _, actions = _run(_spec("PPO", "Pendulum-v1", "Beta"), frames=256)
    assert actions.min() < -0.3 and actions.max() > 0.3


def test_normal_tanh_log_prob_entropy_and_stored_actions():
    from looplab.agent.policy import make_pd

    loc, log_scale = torch.tensor([[0.3, -1.2]]), torch.tensor([[-0.5, 0.2]])
    pd = make_pd("NormalTanh", torch.cat([loc, log_scale], -1))
    u = torch.tensor([[0.7, -2.0]])
    normal = torch.distributions.Normal(loc, log_scale.exp())
    # density of a = tanh(u): log N(u) - sum log(1 - tanh(u)^2)
    expected = (normal.log_prob(u) - torch.log(1 - torch.tanh(u) ** 2)).sum(-1)
    assert torch.allclose(pd.log_prob(u), expected, atol=1e-5)
    torch.manual_seed(0)
    estimates = torch.stack([pd.entropy() for _ in range(4000)]).mean()
    torch.manual_seed(1)
    a = torch.tanh(normal.sample((20000,)))
    entropy_mc = -(pd.log_prob(torch.atanh(a.clamp(-0.999999, 0.999999)))).mean()  # E[-log p(a)]
    assert abs(float(estimates) - float(entropy_mc)) < 0.05
    # the memory keeps pre-tanh samples; the env gets their tanh
    agent, _, actions = _run(_spec("PPO", "Pendulum-v1", "NormalTanh"), frames=16)  # 8 of 16 rollout steps
    assert np.allclose(actions[-1], np.tanh(agent.sampled_action))
    np.testing.assert_array_equal(agent.memory.actions[agent.memory.head - 1], agent.sampled_action)


def test_the_memory_keeps_a_normal_sample_unclipped_and_the_env_gets_it_clipped():
    # a wide policy (std e) samples outside [-1, 1] often; the loss needs the log-prob of the sample itself
    agent, _, actions = _run(_spec("ActorCritic", "Pendulum-v1", "Normal", log_std_init=1.0), frames=12)
    stored = agent.memory.actions[agent.memory.head - 1]
    np.testing.assert_array_equal(stored, agent.sampled_action)
    np.testing.assert_array_equal(actions[-1], np.clip(stored, -1.0, 1.0))
    every = np.concatenate([np.ravel(a) for a in agent.memory.actions[:agent.memory.head]])
    assert np.abs(every).max() > 1.0 and np.abs(actions).max() <= 1.0


def test_linear_to_min_decays_to_min_factor_at_frame():
    from looplab.agent.net.optim import make_lr_scheduler
    from looplab.spec.schema import ClassSpec

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    # 1000 frames at 100 frames per update: 10 updates to reach 0.2
    sched = make_lr_scheduler(ClassSpec(name="LinearToMin", frame=1000, min_factor=0.2), opt, 100)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 1.0 and lrs[5] == pytest.approx(0.6) and lrs[10] == pytest.approx(0.2) and lrs[11] == 0.2
