"""Random baselines: measured once from 100 random episodes, then read from the user's cache."""

from __future__ import annotations

import pytest

from looplab.analysis import baseline


def test_random_baseline_is_measured_once_then_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPLAB_CACHE_DIR", str(tmp_path))
    value = baseline.random_baseline("CartPole-v1")
    assert 15.0 < value < 30.0  # a uniform random policy balances CartPole for ~22 steps
    cached = baseline.cache_file()
    assert cached.parent == tmp_path and cached.exists()

    def no_measure(*_):
        raise AssertionError("measured again instead of reading the cache")

    monkeypatch.setattr(baseline, "_measure", no_measure)
    assert baseline.random_baseline("CartPole-v1") == value
    # another env (or other kwargs) is a different entry
    with pytest.raises(AssertionError, match="measured again"):
        baseline.random_baseline("CartPole-v1", {"sutton_barto_reward": True})


def test_random_baseline_survives_a_corrupt_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPLAB_CACHE_DIR", str(tmp_path))
    baseline.cache_file().write_text("{not json")
    monkeypatch.setattr(baseline, "_measure", lambda *_: (-1.5, 100))
    assert baseline.random_baseline("Pendulum-v1") == -1.5
    assert baseline.random_baseline("Pendulum-v1") == -1.5
