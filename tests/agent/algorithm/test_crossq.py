"""CrossQ: the joint train-mode critic forward, eval-mode actor update, no target nets, CLI smoke."""

from __future__ import annotations

import numpy as np
import torch

from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.validate import validate_spec
from looplab.env import Clock, Env
from tests.agent.loop import step
from tests.conftest import SLM_SPECS, only_run, run_cli

BRN_CRITIC = {"type": "TorchArcNet", "gpu": False, "optim_spec": {"name": "Adam", "lr": 1e-3},
              "arc": {"modules": {"body": {"Sequential": [{"LazyLinear": {"out_features": 16}},
                                                          {"LazyBatchRenorm1d": {"warmup_steps": 2}}, {"ReLU": None}]}},
                      "graph": {"input": "x", "modules": {"body": ["x"]}, "output": "body"}}}


def _agent(env_name: str = "Pendulum-v1", pdtype: str = "Normal"):
    raw = {"agent": {"algorithm": {"name": "CrossQ", "action_pdtype": pdtype, "training_start_step": 0,
                                   "policy_delay": 1},
                     "memory": {"name": "Replay", "batch_size": 8, "max_size": 100},
                     "net": {"type": "MLPNet", "hid_layers": [8], "gpu": False},
                     "critic_net": BRN_CRITIC},
           "env": {"name": env_name, "num_envs": 1, "max_frame": 100}, "meta": {"max_session": 1}}
    spec = validate_spec(raw, spec_name="t")
    env = Env(spec, seed=0)
    return ALGORITHMS.get("CrossQ")(spec, env.info, Clock(num_envs=1), 0), env


def _brn(net: torch.nn.Module) -> torch.nn.Module:
    return next(m for m in net.modules() if type(m).__name__.endswith("BatchRenorm1d"))


def test_critics_come_from_critic_net_and_there_are_no_targets():
    agent, env = _agent()
    env.close()
    assert set(agent.nets()) == {"net", "q1_net", "q2_net"}
    assert not hasattr(agent, "target_q1")
    assert any(type(m).__name__.endswith("BatchRenorm1d") for m in agent.q1.modules())


def test_joint_forward_normalizes_both_halves_with_one_batch_statistic():
    agent, env = _agent()
    env.close()
    s, a = torch.randn(8, 3), torch.rand(8, 1) * 2 - 1
    s2, a2 = torch.randn(8, 3) + 5.0, torch.rand(8, 1) * 2 - 1  # a shifted next-state distribution
    agent.q1.train()
    q, q_next = agent.joint_q(agent.q1, s, a, s2, a2)
    assert q.shape == q_next.shape == (8,)
    joint = agent.q_values(agent.q1, torch.cat([s, s2]), torch.cat([a, a2]))
    assert torch.allclose(torch.cat([q, q_next]), joint)
    separate = agent.q_values(agent.q1, s, a)  # statistics of the first half alone differ
    assert not torch.allclose(q, separate)
    brn = _brn(agent.q1)
    assert int(brn.num_batches_tracked) == 3  # train mode: every forward updated running statistics


def test_training_updates_critics_in_train_mode_and_actor_with_critics_in_eval_mode():
    agent, env = _agent()
    brn = _brn(agent.q1)
    seen_modes = []
    brn.register_forward_hook(lambda m, i, o: seen_modes.append(m.training))
    state = env.reset()
    for _ in range(20):
        state = step(agent, env, state)
    env.close()
    assert True in seen_modes and False in seen_modes  # critic loss (train) and actor loss (eval)
    assert agent.q1.training  # restored after the actor update
    assert np.isfinite(agent.loss) and agent.clock.opt_step > 0


def test_crossq_smoke_runs_through_the_cli(data_dir):
    spec = SLM_SPECS / "benchmark" / "crossq" / "crossq_classic.yaml"
    run_cli("run", str(spec), "crossq_pendulum", "dev", "--set", "env.max_frame=1200", "--set",
            "agent.algorithm.training_start_step=1000", "--set", "meta.log_frequency=400", "--quiet",
            data_dir=data_dir, check=True)
    import pandas as pd

    df = pd.read_csv(next(only_run(data_dir).glob("info/*session_df*.csv")))
    assert df["opt_step"].iloc[-1] > 0 and np.isfinite(df["loss"].iloc[-1])
    assert "alpha" in df.columns


def test_discrete_policy_loss_reads_the_critics_train_mode_joint_forward():
    """SLM Lab's discrete CrossQ: the policy loss reads Q(s, .) from the critic loss's train-mode forward of the
    joint (s, s') batch, not an eval-mode forward of s alone."""
    agent, env = _agent("CartPole-v1", "Categorical")
    env.close()
    g = torch.Generator().manual_seed(0)
    s, s2 = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g) + 3.0
    a = torch.randint(0, 2, (8,), generator=g)
    agent.critic_loss(s, a, torch.ones(8), s2, torch.zeros(8))
    agent.q1.train()
    joint = agent.q1(torch.cat([s, s2]))[:8].detach()
    assert torch.allclose(agent.policy_q[0], joint, atol=1e-6)
    agent.q1.eval()
    assert not torch.allclose(agent.policy_q[0], agent.q1(s).detach(), atol=1e-3)  # eval mode reads otherwise
