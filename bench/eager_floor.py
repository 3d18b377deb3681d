"""How close LoopLab's update is to the same update written by hand in plain eager PyTorch.

Usage: python bench/eager_floor.py [--rounds 8] [--which dqn,ppo]

  dqn  one gradient step of `slm_lab/benchmark_arc/dqn/dqn_classic_arc.yaml dqn_boltzmann_cartpole_arc`
       (replay batch of 64, 4-256-128-2 SELU net, Double-DQN targets, Huber loss, grad-norm clip, AdamW)
       against a hand-written step of the same shapes and math: sample, targets, loss, backward, clip, step.
  ppo  one `train()` of `bench/specs.json ppo_cartpole_zoo` (a rollout of 8 envs x 32 steps, 20 epochs of
       one 256-minibatch, separate 64x64 tanh actor and critic, one Adam) against the same 20 steps by hand.

Both sides run in one process with one torch thread, in alternating rounds so that both see the same load;
the figure is the ratio of the medians (LoopLab / by hand). What the hand-written side leaves out is what
LoopLab adds around the same kernels: its batch assembly, the guard against non-finite losses and
gradients, per-net clipping, the step counters.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from looplab.agent.algorithm import ALGORITHMS  # noqa: E402
from looplab.agent.net.base import clip_grad_norm  # noqa: E402
from looplab.agent.validate import validate_spec  # noqa: E402
from looplab.env import Clock, Env  # noqa: E402
from looplab.experiment.session import step  # noqa: E402
from looplab.spec import load_spec  # noqa: E402


def make_agent(spec_file: str, spec_name: str):
    raw, file = load_spec(spec_file, spec_name)
    spec = validate_spec(raw, file, spec_name=spec_name)
    env = Env(spec, 0)
    clock = Clock(num_envs=env.num_envs)
    return ALGORITHMS.get(spec.algorithm.name)(spec, env.info, clock, 0), env, clock


def dqn_pair() -> tuple[Callable[[], None], Callable[[], None]]:
    agent, env, clock = make_agent("slm_lab/benchmark_arc/dqn/dqn_classic_arc.yaml", "dqn_boltzmann_cartpole_arc")
    state = env.reset()
    for _ in range(300):
        state = step(agent, env, clock, state)

    def looplab() -> None:  # one of the training_iter x training_batch_iter steps of DQN.train
        batch = agent.memory.sample()
        states = agent.to_tensor(batch["states"])
        actions = torch.as_tensor(batch["actions"])
        loss, _ = agent.td_loss(states, actions, agent.targets(batch))
        agent.step_optim("net", loss)

    def mlp() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 256), nn.SELU(), nn.Linear(256, 128), nn.SELU(), nn.Linear(128, 2))

    net, target = mlp(), mlp()
    target.requires_grad_(False)
    params = list(net.parameters())
    optim = torch.optim.AdamW(params, lr=3e-4, fused=True)
    memory = agent.memory

    def by_hand() -> None:
        b = memory.sample()
        s, s2 = torch.as_tensor(b["states"]), torch.as_tensor(b["next_states"])
        a, r, d = torch.as_tensor(b["actions"]).long(), torch.as_tensor(b["rewards"]), torch.as_tensor(b["terminateds"])
        with torch.no_grad():
            a2 = net(s2).argmax(-1, keepdim=True)
            y = r + 0.995 * (1 - d) * target(s2).gather(-1, a2).squeeze(-1)
        q = net(s).gather(-1, a[:, None]).squeeze(-1)
        loss = F.smooth_l1_loss(q, y)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm([p.grad for p in params], 0.55)
        optim.step()

    return looplab, by_hand


def ppo_pair() -> tuple[Callable[[], None], Callable[[], None]]:
    agent, env, clock = make_agent("bench/specs.json", "ppo_cartpole_zoo")
    state = env.reset()
    train = agent.train
    agent.train = lambda: 0.0  # fill one rollout without training on it
    for _ in range(agent.config.time_horizon):
        state = step(agent, env, clock, state)
    agent.train = train
    memory = agent.memory
    rollout = {k: getattr(memory, k).copy() for k in ("states", "next_states", "actions", "rewards", "terminateds",
                                                       "truncateds")}

    def looplab() -> None:  # the same rollout every time
        for k, v in rollout.items():
            getattr(memory, k)[:] = v
        memory.head = memory.size
        agent.train()

    def mlp(out: int) -> nn.Module:
        return nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, out))

    actor, critic = mlp(2), mlp(1)
    optim = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=1e-3, eps=1e-5, fused=True)
    n = 256
    s, a = torch.randn(n, 4), torch.randint(0, 2, (n,))
    adv, ret = torch.randn(n), torch.randn(n)

    def by_hand() -> None:
        with torch.no_grad():
            old = torch.log_softmax(actor(s), -1).gather(-1, a[:, None]).squeeze(-1)
        for _ in range(20):
            idx = torch.randperm(n)
            logp_all = torch.log_softmax(actor(s[idx]), -1)
            ratio = (logp_all.gather(-1, a[idx][:, None]).squeeze(-1) - old[idx]).exp()
            x = adv[idx]
            x = (x - x.mean()) / (x.std() + 1e-8)
            policy_loss = -torch.min(ratio * x, ratio.clamp(0.8, 1.2) * x).mean()
            entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
            value_loss = 0.5 * F.mse_loss(critic(s[idx]).squeeze(-1), ret[idx])
            optim.zero_grad(set_to_none=True)
            (policy_loss - 0.0 * entropy + value_loss).backward()
            clip_grad_norm([p.grad for p in actor.parameters()], 0.5)
            clip_grad_norm([p.grad for p in critic.parameters()], 0.5)
            optim.step()

    return looplab, by_hand


PAIRS = {"dqn": (dqn_pair, 100), "ppo": (ppo_pair, 5)}


def timed(fn: Callable[[], None], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--which", default="dqn,ppo")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for name in args.which.split(","):
        make, calls = PAIRS[name]
        looplab, by_hand = make()
        timed(looplab, calls // 2)
        timed(by_hand, calls // 2)
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(timed(looplab, calls))
            theirs.append(timed(by_hand, calls))
        m, h = statistics.median(ours), statistics.median(theirs)
        print(f"{name}: LoopLab {m * 1e3:.2f} ms ({min(ours) * 1e3:.2f}-{max(ours) * 1e3:.2f}), by hand "
              f"{h * 1e3:.2f} ms ({min(theirs) * 1e3:.2f}-{max(theirs) * 1e3:.2f}): {m / h:.2f}x")


if __name__ == "__main__":
    main()
