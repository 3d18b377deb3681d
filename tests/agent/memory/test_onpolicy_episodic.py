"""OnPolicyReplay with vector envs: per-env episodes, readiness by finished episodes; cross-entropy selection."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np

from looplab.agent.memory.base import MemoryConfig
from looplab.agent.memory.onpolicy import OnPolicyCrossEntropy, OnPolicyCrossEntropyConfig, OnPolicyReplay
from looplab.env.make import EnvInfo

INFO = EnvInfo("test", 2, gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2))
RNG = np.random.default_rng(0)  # on-policy memories draw nothing


def feed(mem, dones_per_step):
    for t, (d0, d1) in enumerate(dones_per_step):
        s = np.array([[t], [100 + t]], dtype=np.float32)
        mem.add(s, np.array([0, 1]), np.array([1.0, 2.0]), s + 0.5, np.array([d0, 0.0]), np.array([0.0, d1]))


def test_episodes_are_kept_per_env_with_vector_envs():
    mem = OnPolicyReplay(MemoryConfig(name="OnPolicyReplay"), INFO, SimpleNamespace(training_frequency=2), RNG)
    # env 0 terminates at t=1, env 1 is truncated at t=2; env 0's second episode is unfinished
    feed(mem, [(0, 0), (1, 0), (0, 1), (0, 0)])
    assert mem.ready and len(mem.episodes) == 2
    batch = mem.sample()
    np.testing.assert_array_equal(batch["states"][:, 0, 0], [0, 1, 100, 101, 102])
    np.testing.assert_array_equal(batch["rewards"][:, 0], [1, 1, 2, 2, 2])
    np.testing.assert_array_equal(batch["terminateds"][:, 0], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(batch["truncateds"][:, 0], [0, 0, 0, 0, 1])
    assert not mem.ready
    feed(mem, [(1, 1)])  # env 0's episode spans the sample: steps t=2, t=3 and this one (t=0 again)
    assert len(mem.episodes) == 2
    np.testing.assert_array_equal(mem.episodes[0]["states"][:, 0], [2, 3, 0])


def test_buffers_grow_for_long_episodes():
    mem = OnPolicyReplay(MemoryConfig(name="OnPolicyReplay"), INFO, SimpleNamespace(training_frequency=1), RNG)
    feed(mem, [(0, 0)] * 300 + [(1, 0)])
    assert len(mem.sample()["states"]) == 301


def test_cross_entropy_keeps_best_episodes():
    cfg = OnPolicyCrossEntropyConfig(name="OnPolicyCrossEntropy", cross_entropy=0.5)
    mem = OnPolicyCrossEntropy(cfg, INFO, SimpleNamespace(training_frequency=2), RNG)
    feed(mem, [(0, 0), (1, 0), (0, 1)])  # env 0 return 2, env 1 return 6
    batch = mem.sample()
    np.testing.assert_array_equal(batch["rewards"][:, 0], [2, 2, 2])
