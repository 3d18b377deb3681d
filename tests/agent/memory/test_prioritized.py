"""Sum tree proportions and updates; PER importance weights and beta annealing."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np

from looplab.agent.memory.prioritized import PrioritizedReplay, PrioritizedReplayConfig, SumTree
from looplab.env.make import EnvInfo


def test_sum_tree_sampling_matches_priorities():
    tree = SumTree(5)
    p = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    tree.update(np.arange(5), p)
    assert tree.total == 10.0
    rng = np.random.default_rng(0)
    idx = tree.find(rng.random(100_000) * tree.total)
    np.testing.assert_allclose(np.bincount(idx, minlength=5) / 1e5, p / 10, atol=0.01)
    tree.update(np.array([0, 0, 3]), np.array([5.0, 6.0, 1.0]))  # duplicates: last write wins
    assert tree.total == 12.0
    np.testing.assert_array_equal(tree.get(np.arange(5)), [6.0, 2.0, 3.0, 1.0, 0.0])


def make_per(beta=0.4, frame=0, max_frame=100):
    info = EnvInfo("test", 1, gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2))
    cfg = PrioritizedReplayConfig(name="PrioritizedReplay", batch_size=4, max_size=4, alpha=1.0, epsilon=0.0,
                                  beta=beta)
    algo = SimpleNamespace(training_start_step=0, training_frequency=1, clock=SimpleNamespace(frame=frame),
                           spec=SimpleNamespace(env=SimpleNamespace(max_frame=max_frame)))
    mem = PrioritizedReplay(cfg, info, algo)
    for t in range(4):
        mem.add(np.zeros((1, 2)), np.zeros(1), np.full(1, t), np.zeros((1, 2)), np.zeros(1), np.zeros(1))
    return mem, algo


def test_importance_weights_and_priority_updates():
    mem, algo = make_per(beta=0.5)
    mem.update_priorities(np.arange(4), np.array([1.0, 1.0, 2.0, 4.0]))
    batch = mem.sample(4000)
    counts = np.bincount(batch["indices"], minlength=4) / 4000
    np.testing.assert_allclose(counts, [1 / 8, 1 / 8, 2 / 8, 4 / 8], atol=0.02)
    # w = (n P)^-beta / max w; P = 1/8 has the largest weight
    expected = {0: 1.0, 1: 1.0, 2: (2 / 8 / (1 / 8)) ** -0.5, 3: (4 / 8 / (1 / 8)) ** -0.5}
    for i, w in zip(batch["indices"][:50], batch["weights"][:50], strict=True):
        assert abs(w - expected[int(i)]) < 1e-6


def test_beta_anneals_to_one_and_new_items_get_max_priority():
    mem, algo = make_per(beta=0.4, max_frame=100)
    assert mem.beta == 0.4
    algo.clock.frame = 50
    assert abs(mem.beta - 0.7) < 1e-9
    algo.clock.frame = 500
    assert mem.beta == 1.0
    mem.update_priorities(np.array([0]), np.array([9.0]))
    mem.add(np.zeros((1, 2)), np.zeros(1), np.full(1, 9.0), np.zeros((1, 2)), np.zeros(1), np.zeros(1))
    assert mem.tree.get(np.array([0]))[0] == 9.0  # slot 0 overwritten with the max priority
