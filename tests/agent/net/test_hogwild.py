"""Hogwild: every worker's updates reach the global nets (`shared` and `synced`), in real processes."""

from __future__ import annotations

import multiprocessing as mp

import pytest
import torch

from looplab.agent.net.hogwild import GlobalNets, attach, make_global_nets
from looplab.experiment.run import prepare
from tests.agent.loop import make_agent, step

SPEC = "looplab/spec/library/a3c_cartpole.json"
SMALL = ["env.num_envs=2", "agent.algorithm.training_frequency=4"]


def spec_of(name: str, *sets: str):
    return prepare(SPEC, name, None, [*SMALL, *sets])[1]


def global_nets(name: str, *sets: str) -> tuple[GlobalNets, list[torch.Tensor]]:
    """The global nets of a trial, and a copy of their initial weights."""
    agent, env = make_agent(spec_of(name, *sets), seed=0)
    env.close()
    nets = make_global_nets(agent, agent.spec.meta.distributed)
    return nets, [t.clone() for ts in nets.params.values() for t in ts]


def flat(nets: GlobalNets) -> list[torch.Tensor]:
    return [t for ts in nets.params.values() for t in ts]


def worker(name: str, sets: list[str], nets: GlobalNets, seed: int, frames: int) -> dict:
    """A session's agent attached to the global nets, trained for `frames` frames."""
    agent, env = make_agent(spec_of(name, *sets), seed=seed)
    attach(agent, nets)
    state = env.reset()
    while agent.clock.frame < frames:
        state = step(agent, env, state)
    env.close()
    local = [p.detach() for n in nets.params for p in agent.nets()[n].parameters()]
    return {"opt_step": agent.clock.opt_step,
            "local_is_global": all(torch.equal(p, g) for p, g in zip(local, flat(nets), strict=True))}


def run_worker(name: str, sets: list[str], nets: GlobalNets, seed: int, frames: int = 64) -> dict:
    """`worker` in a process of its own (spawned, as a session process is), the global nets passed to it."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(worker, (name, sets, nets, seed, frames))


def changed(before: list[torch.Tensor], nets: GlobalNets) -> bool:
    return any(not torch.equal(b, g) for b, g in zip(before, flat(nets), strict=True))


@pytest.mark.parametrize("name", ["a3c_cartpole", "a3c_synced_cartpole"])
def test_each_worker_process_moves_the_global_nets(name):
    nets, initial = global_nets(name)
    assert nets.mode == ("shared" if name == "a3c_cartpole" else "synced")
    assert all(t.is_shared() for t in flat(nets))
    assert set(nets.optim_states) == {"net", "critic_net"}  # GlobalAdam: one optimizer state for all workers
    first = run_worker(name, [], nets, seed=1)
    assert first["opt_step"] > 0 and changed(initial, nets)
    after_first = [t.clone() for t in flat(nets)]
    steps_after_first = [st["step"].clone() for states in nets.optim_states.values() for st in states]
    second = run_worker(name, [], nets, seed=2)
    assert second["opt_step"] > 0 and changed(after_first, nets)
    # the shared Adam state counted both workers' steps
    steps = [st["step"] for states in nets.optim_states.values() for st in states]
    assert all(s > s1 for s, s1 in zip(steps, steps_after_first, strict=True))
    assert float(steps[0]) == first["opt_step"] / 2 + second["opt_step"] / 2  # actor and critic, one step each
    # a synced worker ends with the global weights pulled; a shared one never had others
    assert second["local_is_global"]


def test_shared_workers_nets_are_the_global_storage():
    nets, _ = global_nets("a3c_cartpole")
    agents = [make_agent(spec_of("a3c_cartpole"), seed=s)[0] for s in (1, 2)]
    for agent in agents:
        attach(agent, nets)
    for name, tensors in nets.params.items():
        for a_param, b_param, g in zip(agents[0].nets()[name].parameters(), agents[1].nets()[name].parameters(),
                                       tensors, strict=True):
            assert a_param.data_ptr() == b_param.data_ptr() == g.data_ptr()


def test_synced_workers_keep_their_own_nets_and_start_from_the_global_weights():
    nets, initial = global_nets("a3c_synced_cartpole")
    agent = make_agent(spec_of("a3c_synced_cartpole"), seed=1)[0]
    attach(agent, nets)
    local = [p for n in nets.params for p in agent.nets()[n].parameters()]
    assert all(p.data_ptr() != g.data_ptr() and torch.equal(p, g) for p, g in zip(local, initial, strict=True))


def test_a_plain_optimizer_keeps_a_state_per_worker():
    nets, _ = global_nets("a3c_cartpole", "agent.net.actor_optim_spec.name=Adam",
                          "agent.net.critic_optim_spec.name=Adam")
    assert nets.optim_states == {}
