"""What SLM Lab's own spec files write and its code does, read the same way: a polyak coefficient of 0 (or
none) keeps the target net at its first weights, `update_frequency` is not read with polyak updates, a
`net: {}` is nothing to a Random agent, and SIL's second memory can sit beside an episodic on-policy one."""

from __future__ import annotations

import logging

import pytest
import torch

from looplab.errors import SpecError
from looplab.experiment.run import prepare
from tests.agent.loop import make_agent, step

EXPERIMENTAL = "slm_lab/experimental"


def test_polyak_coef_0_keeps_the_target_net_and_says_so(caplog):
    file = f"{EXPERIMENTAL}/dqn/dqn_cartpole.json"
    with caplog.at_level("WARNING", logger="looplab"):
        _, spec, _ = prepare(file, "dqn_boltzmann_cartpole", None, ["env.max_frame=400"])
    assert (spec.net.update_type, spec.net.polyak_coef) == ("polyak", 0.0)
    lines = [r.getMessage() for r in caplog.records if "polyak_coef" in r.getMessage()]
    assert lines == [f"looplab: warning: {file}: spec 'dqn_boltzmann_cartpole': agent.net.polyak_coef: 0 (or absent, "
                     "SLM Lab's default): the target net keeps its initial weights"]
    agent, env = make_agent(spec)
    first = [p.clone() for p in agent.target_net.parameters()]
    state = env.reset()
    for _ in range(100):
        state = step(agent, env, state)
    assert agent.clock.opt_step > 0  # the online net trained ...
    assert any(not torch.equal(a, b) for a, b in zip(agent.net.parameters(), first, strict=True))
    # ... and the target net is where it started, as SLM Lab's lerp by 0 leaves it
    assert all(torch.equal(a, b) for a, b in zip(agent.target_net.parameters(), first, strict=True))
    env.close()


def test_a_positive_polyak_coef_moves_the_target_without_a_warning(caplog):
    with caplog.at_level("WARNING", logger="looplab"):
        _, spec, _ = prepare(f"{EXPERIMENTAL}/dqn/dqn_cartpole.json", "dqn_boltzmann_cartpole", None,
                             ["env.max_frame=400", "agent.net.polyak_coef=0.1"])
    assert not [r for r in caplog.records if "polyak_coef" in r.getMessage()]
    agent, env = make_agent(spec)
    first = [p.clone() for p in agent.target_net.parameters()]
    state = env.reset()
    for _ in range(100):
        state = step(agent, env, state)
    assert any(not torch.equal(a, b) for a, b in zip(agent.target_net.parameters(), first, strict=True))
    env.close()


def test_polyak_without_a_coef_is_slm_labs_default_0(caplog):
    # ddqn_concat_lunar: update_type polyak, no polyak_coef, and update_frequency 0.9, which SLM Lab never reads
    with caplog.at_level("WARNING", logger="looplab"):
        _, spec, _ = prepare(f"{EXPERIMENTAL}/dqn/ddqn_lunar_search.json", "ddqn_concat_lunar", None, None)
    assert (spec.net.update_type, spec.net.polyak_coef, spec.net.update_frequency) == ("polyak", 0.0, 0.9)
    assert any("agent.net.polyak_coef: 0 (or absent" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("value", "expected"), [(100, 100), (1e3, 1000), ("2e3", 2000)])
def test_replace_frequency_is_a_whole_number_of_frames(value, expected):
    _, spec, _ = prepare(f"{EXPERIMENTAL}/dqn/dqn_cartpole.json", "dqn_boltzmann_cartpole", None,
                         ["env.max_frame=400", "agent.net.update_type=replace", f"agent.net.update_frequency={value}"])
    assert spec.net.update_frequency == expected and isinstance(spec.net.update_frequency, int)
    with pytest.raises(SpecError, match=r"agent\.net\.update_frequency: .*greater than 0"):
        prepare(f"{EXPERIMENTAL}/dqn/dqn_cartpole.json", "dqn_boltzmann_cartpole", None,
                ["agent.net.update_type=replace", "agent.net.update_frequency=0"])


@pytest.mark.parametrize("name", ["random_cartpole", "random_pendulum"])
def test_random_reads_no_net(name):
    _, spec, _ = prepare(f"{EXPERIMENTAL}/misc/random.json", name, None, ["env.max_frame=100"])
    assert spec.net is None
    agent, env = make_agent(spec)
    state = env.reset()
    for _ in range(5):
        state = step(agent, env, state)
    assert agent.clock.frame == 5 * env.num_envs
    env.close()


def test_an_empty_net_is_still_an_error_for_an_agent_that_needs_one():
    with pytest.raises(SpecError, match=r"agent\.net\.type: required key is missing"):
        prepare(f"{EXPERIMENTAL}/misc/random.json", "random_cartpole", None,
                ["agent.algorithm.name=Reinforce", "agent.algorithm.gamma=0.99"])


def test_sil_beside_an_episodic_memory_trains():
    _, spec, _ = prepare(f"{EXPERIMENTAL}/sil/sil_cartpole.json", "sil_separate_cartpole", None,
                         ["env.max_frame=2000"])
    assert (spec.memory.name, spec.memory.sil_replay_name, spec.memory.batch_size) == ("OnPolicyReplay", "Replay", 32)
    agent, env = make_agent(spec)
    state = env.reset()
    while agent.clock.opt_step == 0 and agent.clock.frame < 2000:
        state = step(agent, env, state)
    assert agent.clock.opt_step > 0 and agent.sil_memory.size > 0
    env.close()


def test_the_warning_is_one_line_per_spec(caplog):
    with caplog.at_level(logging.WARNING, logger="looplab"):
        prepare(f"{EXPERIMENTAL}/dqn/dueling_dqn_cartpole.json", "dueling_dqn_boltzmann_cartpole", None, None)
    assert len([r for r in caplog.records if "polyak_coef" in r.getMessage()]) == 1
