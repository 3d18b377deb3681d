"""The env with its transforms: normalization and clipping end to end, Atari preprocessing, full-game returns."""

from __future__ import annotations

import numpy as np
import pytest

from looplab.agent.validate import validate_spec
from looplab.env.atari import game_over
from looplab.env.make import Env


def _spec(env: dict, algo: dict | None = None) -> object:
    raw = {"agent": {"algorithm": algo or {"name": "SoftActorCritic", "action_pdtype": "Categorical", "gamma": 0.5},
                     "memory": {"name": "Replay", "batch_size": 8, "max_size": 100},
                     "net": {"type": "MLPNet", "gpu": False}},
           "env": {"max_frame": 1000, **env}, "meta": {"max_session": 1}}
    return validate_spec(raw, spec_name="t")


def test_game_over():
    term, trunc = np.array([True, True, False, False]), np.array([False, False, False, True])
    lives, prev = np.array([2, 5, 3, 3]), np.array([3, 1, 3, 3])
    # env 0 lost a life, env 1 reset after its last life, env 3 was truncated
    assert list(game_over(term, trunc, lives, prev)) == [False, True, False, True]
    assert list(game_over(term, trunc, None, None)) == [True, True, False, True]


def test_normalized_env_state_round_trip_and_clipping():
    spec = _spec({"name": "Pendulum-v1", "num_envs": 2, "normalize_obs": True, "normalize_reward": True,
                  "clip_obs": 0.5}, {"name": "SoftActorCritic", "gamma": 0.9})
    env = Env(spec, seed=0)
    env.reset()
    for _ in range(50):
        obs, reward, *_ = env.step(env.sample_actions())
    assert obs.dtype == np.float32 and np.abs(obs).max() <= 0.5
    assert env.transforms["reward_clip"].bounds == (-10.0, 10.0) and env.transforms["reward_norm"].gamma == 0.9
    raw_returns_are_raw = all(r < -10 for r in env.returns) or not env.returns
    assert raw_returns_are_raw
    state = env.state_dict()
    env2 = Env(spec, seed=0)
    env2.load_state_dict(state)
    assert np.allclose(env2.transforms["obs_norm"].rms.mean, env.transforms["obs_norm"].rms.mean)
    assert env2.transforms["reward_norm"].rms.var == env.transforms["reward_norm"].rms.var
    env.close()
    env2.close()


@pytest.mark.parametrize("mode", ["auto", "sync"])
def test_atari_preprocessing_shapes_dtypes_and_clipped_rewards(mode):
    spec = _spec({"name": "ALE/Breakout-v5", "num_envs": 2, "life_loss_info": True, "vectorization_mode": mode})
    env = Env(spec, seed=0)
    if mode == "auto":
        from ale_py.vector_env import AtariVectorEnv

        assert isinstance(env.venv, AtariVectorEnv)  # ale-py's native vector env
    assert env.info.state_shape == (4, 84, 84) and env.info.is_image
    obs = env.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    rng = np.random.default_rng(0)
    rewards, raw_total = [], 0.0
    for _ in range(400):
        obs, reward, term, trunc, next_state = env.step(rng.integers(0, env.info.action_dim, size=2))
        rewards.append(reward)
        assert next_state.dtype == np.uint8 and next_state.shape == (2, 4, 84, 84)
    rewards = np.concatenate(rewards)
    assert rewards.min() >= -1.0 and rewards.max() <= 1.0  # clipped for learning
    raw_total = float(np.sum(env.returns)) if env.returns else 0.0
    assert raw_total >= 0.0
    env.close()


def test_full_game_returns_span_lives():
    """With life_loss_info an episode ends at every lost life but a return is recorded once per game."""
    spec = _spec({"name": "ALE/Breakout-v5", "num_envs": 1, "life_loss_info": True})
    env = Env(spec, seed=1)
    env.reset()
    rng = np.random.default_rng(1)
    life_ends = 0
    while env.episodes < 1:
        *_, term, trunc, _ = env.step(rng.integers(0, 4, size=1))
        life_ends += int(term[0])
    env.close()
    assert life_ends == 5  # Breakout: 5 lives, one game
    assert len(env.returns) == 1


def test_scale_obs_scales_images_for_the_net_only():
    spec = _spec({"name": "ALE/Pong-v5", "num_envs": 1, "scale_obs": True})
    env = Env(spec, seed=0)
    assert env.info.scale_obs
    obs = env.reset()
    env.close()
    assert obs.dtype == np.uint8  # the env and the memory keep uint8 images
    from looplab.agent.algorithm.base import Algorithm

    agent = Algorithm.__new__(Algorithm)
    agent.env_info, agent.device = env.info, "cpu"
    x = agent.to_tensor(np.full((1, 2), 255, np.uint8))
    assert x.dtype.is_floating_point and float(x.max()) == 1.0  # the net sees [0, 1]


def test_reward_scale_scales_learning_rewards_not_reported_returns():
    plain, scaled = (Env(_spec({"name": "CartPole-v1", "num_envs": 2, **keys}), seed=0)
                     for keys in ({}, {"reward_scale": 10.0}))
    for env in (plain, scaled):
        env.reset()
    for _ in range(40):
        action = np.zeros(2, dtype=np.int64)
        _, r_plain, *_ = plain.step(action)
        _, r_scaled, *_ = scaled.step(action)
        np.testing.assert_array_equal(r_scaled, 10.0 * r_plain)
    assert plain.returns and list(plain.returns) == list(scaled.returns)
    plain.close()
    scaled.close()


def test_rescaled_action_space_is_made_without_precision_warnings():
    import warnings

    from looplab.env.make import single_env_fn

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Gymnasium's "Box low's precision lowered" would raise here
        env = single_env_fn("Pendulum-v1", {})()
    assert env.action_space.dtype == np.float32 and env.action_space.low.tolist() == [-1.0]
    env.close()
