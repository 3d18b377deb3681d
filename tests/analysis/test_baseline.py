"""Random baselines: SLM Lab's shipped table first; else measured once from 100 random episodes, then read
from the user's cache."""

from __future__ import annotations

import pytest

from looplab.analysis import baseline


def no_measure(*_):
    raise AssertionError("measured instead of read")


def test_known_envs_come_from_slm_labs_table_without_measuring(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LOOPLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(baseline, "_measure", no_measure)
    table = baseline.io.read_json(baseline.SHIPPED)
    assert baseline.random_baseline("CartPole-v1") == table["CartPole-v1"]["mean"]
    assert baseline.random_baseline("ALE/Breakout-v5", {"life_loss_info": True}) == table["ALE/Breakout-v5"]["mean"]
    assert not baseline.cache_file().exists() and "measuring" not in caplog.text
    # an env key that changes the returns is measured, not read from the table
    with pytest.raises(AssertionError, match="measured instead"):
        baseline.random_baseline("CartPole-v1", {"sutton_barto_reward": True})


def test_an_unknown_env_is_measured_once_with_a_log_line_then_cached(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LOOPLAB_CACHE_DIR", str(tmp_path))
    assert "CartPole-v0" not in baseline.shipped_baselines()
    with caplog.at_level("INFO", logger="looplab"):
        value = baseline.random_baseline("CartPole-v0")
    assert 15.0 < value < 30.0  # a uniform random policy balances CartPole for ~22 steps
    assert "CartPole-v0: not in SLM Lab's table, measuring 100 random episodes" in caplog.text
    cached = baseline.cache_file()
    assert cached.parent == tmp_path and cached.exists()
    monkeypatch.setattr(baseline, "_measure", no_measure)
    assert baseline.random_baseline("CartPole-v0") == value
    # other kwargs are a different entry
    with pytest.raises(AssertionError, match="measured instead"):
        baseline.random_baseline("CartPole-v0", {"sutton_barto_reward": True})


def test_random_baseline_survives_a_corrupt_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPLAB_CACHE_DIR", str(tmp_path))
    baseline.cache_file().write_text("{not json")
    monkeypatch.setattr(baseline, "_measure", lambda *_: (-1.5, 100))
    assert baseline.random_baseline("Pendulum-v1", {"g": 9.81}) == -1.5
    assert baseline.random_baseline("Pendulum-v1", {"g": 9.81}) == -1.5
