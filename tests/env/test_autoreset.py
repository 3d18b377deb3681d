"""`env.autoreset`: same-step against next-step (SLM Lab's vector envs), the default, and resume."""

from __future__ import annotations

import numpy as np
import pytest

from looplab.agent.validate import validate_spec
from looplab.env.make import Env, autoreset_mode
from looplab.env.pool import WorkerPoolVectorEnv
from looplab.errors import SpecError
from looplab.experiment import checkpoint


def _spec(env: dict, **meta) -> object:
    raw = {"agent": {"algorithm": {"name": "PPO", "gamma": 0.99, "lam": 0.95, "time_horizon": 8, "minibatch_size": 8,
                                   "training_epoch": 1, "clip_eps_spec": {"name": "no_decay", "start_val": 0.2}},
                     "memory": {"name": "OnPolicyBatchReplay"},
                     "net": {"type": "MLPNet", "hid_layers": [8], "hid_layers_activation": "tanh",
                             "optim_spec": {"name": "Adam", "lr": 0.001}}},
           "env": {"max_frame": 1000, **env}, "meta": {"max_session": 1, **meta}}
    return validate_spec(raw, spec_name="t")


def _episode_ends(env: Env, steps: int, seed: int = 3) -> list[tuple]:
    """(obs, reward, terminated, truncated, next_state) of `steps` steps under fixed random actions."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        out.append(tuple(np.array(x, copy=True) for x in env.step(rng.integers(0, 2, env.num_envs))))
    return out


@pytest.mark.parametrize(("env", "mode"), [({"name": "CartPole-v1", "num_envs": 1}, "same_step"),
                                           ({"name": "CartPole-v1", "num_envs": 4}, "next_step"),
                                           ({"name": "CartPole-v1", "num_envs": 4, "autoreset": "same_step"}, "same_step"),
                                           ({"name": "CartPole-v1", "num_envs": 1, "autoreset": "next_step"}, "next_step"),
                                           ({"name": "ALE/Pong-v5", "num_envs": 4}, "same_step")])
def test_the_default_is_slm_labs_next_step_for_vector_envs_only(env, mode):
    assert autoreset_mode(_spec(env).env) == mode


def test_next_step_on_atari_is_refused_naming_the_key():
    with pytest.raises(SpecError, match="autoreset") as e:
        _spec({"name": "ALE/Pong-v5", "num_envs": 2, "autoreset": "next_step"})
    assert "env.autoreset" in str(e.value) or "autoreset" in getattr(e.value, "path", "")


def test_next_step_ends_an_episode_then_resets_with_a_zero_reward_transition_from_the_final_state():
    same = Env(_spec({"name": "CartPole-v1", "num_envs": 2, "autoreset": "same_step"}), seed=5)
    nxt = Env(_spec({"name": "CartPole-v1", "num_envs": 2, "autoreset": "next_step"}), seed=5)
    assert not same.next_step and nxt.next_step
    first_same, first_next = same.reset(), nxt.reset()
    assert np.array_equal(first_same, first_next)
    # the same actions until the first episode ends: both envs see the same steps
    rng = np.random.default_rng(0)
    while True:
        a = rng.integers(0, 2, 2)
        s_obs, s_r, s_term, s_trunc, s_next = same.step(a)
        n_obs, n_r, n_term, n_trunc, n_next = nxt.step(a)
        assert np.array_equal(s_next, n_next) and np.array_equal(s_r, n_r) and np.array_equal(s_term, n_term)
        done = s_term | s_trunc
        if done.any():
            break
        assert np.array_equal(s_obs, n_obs)
    i = int(np.flatnonzero(done)[0])
    # next_step acts on the final observation; same_step on the next episode's first one
    assert np.array_equal(n_obs[i], n_next[i]) and not np.array_equal(s_obs[i], n_obs[i])
    assert nxt.episodes == same.episodes == int(done.sum()) and nxt.returns == same.returns
    assert list(nxt.pending_resets) == list(done)
    # the next step ignores env i's action: it resets env i to what same_step reset it to, reward 0, not done
    obs, reward, term, trunc, next_state = nxt.step(rng.integers(0, 2, 2))
    assert np.array_equal(obs[i], s_obs[i]) and np.array_equal(next_state[i], s_obs[i])
    assert reward[i] == 0.0 and not term[i] and not trunc[i]
    assert nxt._ep_len[i] == 0 and nxt._ep_return[i] == 0.0  # the reset step is no step of the new episode
    assert not nxt.pending_resets[i]
    same.close()
    nxt.close()


def test_a_stacked_state_starts_fresh_at_the_reset_step():
    env = Env(_spec({"name": "CartPole-v1", "num_envs": 2, "frame_stack": 3}), seed=1)
    assert env.next_step
    env.reset()
    steps = _episode_ends(env, 60)
    ends = [k for k, s in enumerate(steps) if (s[2] | s[3]).any()]
    k = ends[0]
    i = int(np.flatnonzero(steps[k][2] | steps[k][3])[0])
    obs, _, _, _, next_state = steps[k + 1]
    # the reset step's state and its stored successor are the new episode's window: zeros, then the first obs
    assert np.array_equal(obs[i][:8], np.zeros(8)) and np.array_equal(next_state[i], obs[i])
    # the final state of the ended episode is a full window of that episode
    assert np.array_equal(steps[k][0][i], steps[k][4][i]) and np.abs(steps[k][0][i][:4]).sum() > 0
    env.close()


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_a_checkpoint_taken_between_an_episode_end_and_its_reset_resumes_exactly(vectorization):
    spec = _spec({"name": "CartPole-v1", "num_envs": 4, "vectorization_mode": vectorization,
                  "autoreset": "next_step"}, env_workers=2)
    env = Env(spec, seed=2)
    assert isinstance(env.venv, WorkerPoolVectorEnv) == (vectorization == "async")
    env.reset()
    rng = np.random.default_rng(1)
    while not env.pending_resets.any():
        env.step(rng.integers(0, 2, 4))
    saved = checkpoint.env_state(env)
    assert saved["pending_resets"].any()
    after = _episode_ends(env, 40)
    other = Env(spec, seed=99)
    other.reset()
    assert checkpoint.load_env_state(other, saved) is None
    assert list(other.pending_resets) == list(saved["pending_resets"])
    again = _episode_ends(other, 40)
    for a, b in zip(after, again, strict=True):
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)
    env.close()
    other.close()
