"""`env.max_t`: at most max_t agent steps per episode, the episode then truncated (not terminated)."""

from __future__ import annotations

import numpy as np

from looplab.analysis.baseline import random_baseline
from looplab.env.make import Env, env_kwargs
from tests.env.test_autoreset import _spec


def _lengths(max_t: int | None, steps: int = 200) -> tuple[list[int], list[bool]]:
    """Episode lengths and whether each ended truncated, under actions that keep CartPole up for long."""
    env = Env(_spec({"name": "CartPole-v1", "num_envs": 1, "autoreset": "same_step",
                     **({"max_t": max_t} if max_t else {})}), seed=0)
    env.reset(seed=0)
    lengths, truncs, n = [], [], 0
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(np.array([i % 2]))
        n += 1
        if terminated[0] or truncated[0]:
            lengths.append(n)
            truncs.append(bool(truncated[0]) and not bool(terminated[0]))
            n = 0
    env.close()
    return lengths, truncs


def test_max_t_truncates_every_episode_at_max_t_steps():
    lengths, truncs = _lengths(7)
    assert lengths == [7] * (200 // 7) and all(truncs)


def test_without_max_t_the_env_keeps_its_own_limit():
    lengths, _ = _lengths(None, 60)
    assert lengths == [] or min(lengths) > 7  # alternating pushes keep the pole up past 7 steps


def test_max_t_equal_to_the_registered_limit_changes_nothing():
    same = _spec({"name": "CartPole-v1", "max_t": 500}).env
    assert env_kwargs(same) == {}
    assert env_kwargs(_spec({"name": "CartPole-v1", "max_t": 50}).env) == {"max_episode_steps": 50}


def test_a_time_limit_gets_its_own_random_baseline(tmp_path, monkeypatch):
    """SLM Lab's table holds CartPole-v1 at its own 500-step limit; a 10-step limit is measured, and lower."""
    monkeypatch.setenv("LOOPLAB_CACHE_DIR", str(tmp_path))
    assert random_baseline("CartPole-v1", {}) == 22.97
    assert random_baseline("CartPole-v1", {"max_episode_steps": 10}) <= 10.0
