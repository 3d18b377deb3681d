"""Sum tree proportions and updates; PER's keys: new-item priority, i.i.d. or stratified draws,
importance weights with beta annealing, CER items' priorities; checkpoint round trip."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from pydantic import ValidationError

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


def make_per(steps=4, max_frame=100, **keys):
    info = EnvInfo("test", 1, gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2))
    cfg = PrioritizedReplayConfig(**{"name": "PrioritizedReplay", "batch_size": 4, "max_size": 4, "alpha": 1.0,
                                     "epsilon": 0.0, **keys})
    algo = SimpleNamespace(training_start_step=0, training_frequency=1, clock=SimpleNamespace(frame=0),
                           spec=SimpleNamespace(env=SimpleNamespace(max_frame=max_frame)))
    mem = PrioritizedReplay(cfg, info, algo, np.random.default_rng(0))
    add(mem, steps)
    return mem, algo


def add(mem, n, reward=0.0):
    for _ in range(n):
        mem.add(np.zeros((1, 2)), np.zeros(1), np.full(1, reward), np.zeros((1, 2)), np.zeros(1), np.zeros(1))


def test_new_items_get_slm_lab_priority_by_default():
    mem, _ = make_per(alpha=0.6, epsilon=1e-4)
    np.testing.assert_allclose(mem.tree.get(np.arange(4)), (100000 + 1e-4) ** 0.6)
    assert abs(mem.tree.get(np.array([0]))[0] - 1000.0) < 0.01  # 1e5^0.6 = 1000
    mem.update_priorities(np.array([0]), np.array([9.0]))
    add(mem, 1)  # overwrites slot 0: back to the fixed new-item priority, not the running max
    np.testing.assert_allclose(mem.tree.get(np.array([0])), (100000 + 1e-4) ** 0.6)


def test_new_items_get_running_max_priority_with_new_priority_max():
    mem, _ = make_per(new_priority="max")
    np.testing.assert_array_equal(mem.tree.get(np.arange(4)), 1.0)  # the max so far starts at 1
    mem.update_priorities(np.array([1]), np.array([9.0]))
    add(mem, 1)
    assert mem.tree.get(np.array([0]))[0] == 9.0


def test_no_importance_weights_by_default():
    mem, _ = make_per()
    assert "weights" not in mem.sample()


def test_importance_weights_and_priority_updates():
    mem, _ = make_per(importance_weights=True, beta=0.5)
    mem.update_priorities(np.arange(4), np.array([1.0, 1.0, 2.0, 4.0]))
    batch = mem.sample(4000)
    counts = np.bincount(batch["indices"], minlength=4) / 4000
    np.testing.assert_allclose(counts, [1 / 8, 1 / 8, 2 / 8, 4 / 8], atol=0.02)
    # w = (n P)^-beta / max w; P = 1/8 has the largest weight
    expected = {0: 1.0, 1: 1.0, 2: (2 / 8 / (1 / 8)) ** -0.5, 3: (4 / 8 / (1 / 8)) ** -0.5}
    for i, w in zip(batch["indices"][:50], batch["weights"][:50], strict=True):
        assert abs(w - expected[int(i)]) < 1e-6


def test_beta_anneals_to_one():
    mem, algo = make_per(importance_weights=True, beta=0.4, max_frame=100)
    assert mem.beta == 0.4
    algo.clock.frame = 50
    assert abs(mem.beta - 0.7) < 1e-9
    algo.clock.frame = 500
    assert mem.beta == 1.0


def test_beta_without_importance_weights_is_an_error():
    with pytest.raises(ValidationError, match="needs importance_weights: true"):
        PrioritizedReplayConfig(name="PrioritizedReplay", batch_size=4, max_size=4, alpha=1.0, epsilon=0.0, beta=0.4)


def test_iid_draws_repeat_and_stratified_draws_one_per_slice():
    """Four equal priorities, batches of four: stratified takes each item once, i.i.d. repeats some."""
    iid, _ = make_per()
    stratified, _ = make_per(sampling="stratified")
    iid_batches = [np.sort(iid.sample()["indices"]) for _ in range(50)]
    assert all(np.array_equal(np.sort(stratified.sample()["indices"]), np.arange(4)) for _ in range(50))
    assert any(len(np.unique(b)) < 4 for b in iid_batches)
    counts = np.bincount(iid.sample(8000)["indices"], minlength=4) / 8000
    np.testing.assert_allclose(counts, 0.25, atol=0.02)


def test_cer_items_keep_their_priority_unless_cer_update():
    for cer_update in (False, True):
        mem, _ = make_per(steps=0, use_cer=True, cer_update=cer_update, max_size=8)
        add(mem, 6)
        batch = mem.sample()  # four new transitions: the whole batch is CER items 0..3
        np.testing.assert_array_equal(batch["indices"], [0, 1, 2, 3])
        np.testing.assert_array_equal(batch["priority_indices"], [0, 1, 2, 3] if cer_update else [-1] * 4)
        mem.update_priorities(batch["priority_indices"], np.full(4, 3.0))
        np.testing.assert_allclose(mem.tree.get(np.arange(4)), 3.0 if cer_update else 100000.0)


def test_state_dict_round_trip_reproduces_samples_and_priorities():
    mem, _ = make_per(steps=6, use_cer=True, max_size=8, alpha=0.6, epsilon=1e-4)
    batch = mem.sample()
    mem.update_priorities(batch["priority_indices"], np.arange(4.0))
    add(mem, 1)
    other, _ = make_per(steps=0, use_cer=True, max_size=8, alpha=0.6, epsilon=1e-4)
    other.load_state_dict(mem.state_dict())
    other.rng.bit_generator.state = mem.rng.bit_generator.state  # the session's stream, saved with the session
    for _ in range(3):
        a, b = mem.sample(), other.sample()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(mem.tree.tree, other.tree.tree)


@pytest.mark.parametrize("capacity", [1, 2, 5, 1000])
def test_sum_tree_nodes_stay_the_sums_of_their_children(capacity):
    tree = SumTree(capacity)
    rng = np.random.default_rng(capacity)
    leaves = np.zeros(tree.leaves)
    for _ in range(50):
        idx = rng.integers(0, capacity, size=rng.integers(1, 9))  # duplicates included
        values = rng.random(len(idx))
        tree.update(idx, values)
        leaves[idx] = values  # numpy's fancy assignment: the last duplicate wins, as in the tree
    full = np.zeros(2 * tree.leaves)
    full[tree.leaves:] = leaves
    for k in range(tree.leaves - 1, 0, -1):
        full[k] = full[2 * k] + full[2 * k + 1]
    np.testing.assert_array_equal(tree.tree[1:], full[1:])  # bit for bit, the same additions in the same order
