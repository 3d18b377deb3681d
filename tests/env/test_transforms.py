"""Env transforms: each against hand-computed values on a tiny batch, frozen statistics, state round trips,
the chain's order, checkpoints by name, and a transform file dropped into the folder."""

from __future__ import annotations

import textwrap

import gymnasium as gym
import numpy as np
import pytest

import looplab.env.transforms as transforms_pkg
from looplab.agent.validate import validate_spec
from looplab.env.make import Env, env_kwargs, probe_env
from looplab.env.transforms import TRANSFORMS, EnvContext, Step, build_chain
from looplab.env.transforms.clip import ObsClip, RewardClip, clip_bounds
from looplab.env.transforms.normalize import ObsNormalizer, RewardNormalizer
from looplab.env.transforms.reward_scale import RewardScale
from looplab.errors import SpecError
from looplab.experiment import checkpoint
from tests.conftest import drop_into_package

EPS = 1e-8
CTX = EnvContext(num_envs=2, observation_space=gym.spaces.Box(-5, 5, (2,), np.float32), atari=False)


def _spec(env: dict, net: dict | None = None) -> object:
    raw = {"agent": {"algorithm": {"name": "SoftActorCritic", "action_pdtype": "Categorical", "gamma": 0.5},
                     "memory": {"name": "Replay", "batch_size": 8, "max_size": 100},
                     "net": net or {"type": "MLPNet", "gpu": False}},
           "env": {"max_frame": 1000, "name": "CartPole-v1", **env}, "meta": {"max_session": 1}}
    return validate_spec(raw, spec_name="t")


def _step(obs, next_state=None, reward=(0.0, 0.0), done=(False, False)) -> Step:
    obs = np.array(obs, dtype=np.float32)
    done = np.array(done)
    return Step(obs, obs if next_state is None else np.array(next_state, dtype=np.float32),
                np.array(reward, dtype=np.float64), done, done)


# ---- each transform -------------------------------------------------------------------------------
def test_obs_norm_learns_from_obs_only_and_normalizes_both():
    norm = ObsNormalizer((2,))
    norm.load_state_dict({"mean": [1.0, 0.0], "var": [4.0, 1.0], "count": 2.0})
    step = _step([[3.0, 1.0], [5.0, -1.0]], next_state=[[3.0, 1.0], [100.0, 100.0]])
    norm.step(step)
    # Chan et al.'s merge of (count 2, mean [1, 0], var [4, 1]) with the batch (count 2, mean [4, 0], var [1, 1])
    mean = np.array([2.5, 0.0])
    var = (np.array([4.0, 1.0]) * 2 + np.array([1.0, 1.0]) * 2 + np.array([3.0, 0.0]) ** 2 * 2 * 2 / 4) / 4
    np.testing.assert_allclose(norm.rms.mean, mean)
    np.testing.assert_allclose(norm.rms.var, var)  # [3.25, 1.0]: next_state's [100, 100] is not counted
    assert norm.rms.count == 4.0
    np.testing.assert_allclose(step.obs, (np.array([[3.0, 1.0], [5.0, -1.0]]) - mean) / np.sqrt(var + EPS), rtol=1e-6)
    np.testing.assert_allclose(step.next_state[1], (np.array([100.0, 100.0]) - mean) / np.sqrt(var + EPS), rtol=1e-6)
    assert step.obs.dtype == np.float32


def test_obs_transforms_keep_next_state_the_same_array_when_no_game_ended():
    step = _step([[3.0, 1.0], [5.0, -1.0]])
    ObsNormalizer((2,)).step(step)
    ObsClip((-0.5, 0.5)).step(step)
    assert step.next_state is step.obs and np.abs(step.obs).max() == 0.5


def test_reward_norm_scales_by_discounted_return_std_and_restarts_returns_where_an_episode_ended():
    norm = RewardNormalizer(num_envs=2, gamma=0.5)
    norm.load_state_dict({"mean": 0.0, "var": 1.0, "count": 2.0, "returns": [2.0, 4.0]})
    step = _step([[0, 0], [0, 0]], reward=[1.0, 2.0], done=[False, True])
    norm.step(step)
    # returns 0.5 * [2, 4] + [1, 2] = [2, 4] (mean 3, var 1), merged with (count 2, mean 0, var 1):
    # mean 1.5, var (1 * 2 + 1 * 2 + 3 ** 2 * 2 * 2 / 4) / 4 = 3.25
    assert norm.rms.mean == pytest.approx(1.5) and norm.rms.var == pytest.approx(3.25)
    np.testing.assert_array_equal(norm.returns, [2.0, 0.0])
    np.testing.assert_allclose(step.reward, np.array([1.0, 2.0]) / np.sqrt(3.25 + EPS), rtol=1e-6)
    assert step.reward.dtype == np.float32


def test_reward_scale_and_clips():
    step = _step([[9.0, -9.0], [0.2, 0.0]], reward=[1.0, -3.0])
    for transform in (RewardScale(2.0), RewardClip((-5.0, 1.0)), ObsClip((-1.0, 1.0))):
        transform.step(step)
    np.testing.assert_array_equal(step.reward, [1.0, -5.0])
    np.testing.assert_array_equal(step.obs, np.array([[1.0, -1.0], [0.2, 0.0]], dtype=np.float32))
    assert clip_bounds(None) is None and clip_bounds(5) == (-5.0, 5.0) and clip_bounds([-1, 2]) == (-1.0, 2.0)


def test_frozen_statistics_do_not_move():
    obs_norm, reward_norm = ObsNormalizer((2,)), RewardNormalizer(num_envs=2, gamma=0.9)
    obs_norm.step(_step([[1.0, 2.0], [3.0, 4.0]]))
    reward_norm.step(_step([[0, 0], [0, 0]], reward=[1.0, 2.0]))
    before = [obs_norm.state_dict(), reward_norm.state_dict()]
    for transform in (obs_norm, reward_norm):
        transform.freeze()
    step = _step([[50.0, 50.0], [-50.0, 0.0]], reward=[9.0, 9.0], done=[True, True])
    obs_norm.step(step)
    reward_norm.step(step)
    assert obs_norm.reset(np.ones((2, 2))).shape == (2, 2)
    for transform, saved in zip((obs_norm, reward_norm), before, strict=True):
        for key, value in transform.state_dict().items():
            np.testing.assert_array_equal(value, saved[key])
    np.testing.assert_allclose(step.reward, 9.0 / np.sqrt(reward_norm.rms.var + EPS), rtol=1e-6)


@pytest.mark.parametrize("make", [lambda: ObsNormalizer((2,)), lambda: RewardNormalizer(num_envs=2, gamma=0.9)])
def test_state_round_trip_gives_the_same_next_step(make):
    a, b = make(), make()
    a.step(_step([[1.0, 2.0], [3.0, 5.0]], reward=[1.0, 2.0], done=[False, True]))
    b.load_state_dict(a.state_dict())
    sa, sb = (_step([[0.5, 1.0], [2.0, -1.0]], reward=[3.0, -1.0]) for _ in range(2))
    a.step(sa)
    b.step(sb)
    np.testing.assert_array_equal(sa.obs, sb.obs)
    np.testing.assert_array_equal(sa.reward, sb.reward)
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key])


# ---- the chain ------------------------------------------------------------------------------------
RNN = {"type": "RecurrentNet", "fc_hid_layers": [8], "rnn_hidden_size": 8, "seq_len": 3, "gpu": False}


def test_the_chain_follows_the_documented_order_and_leaves_out_what_the_spec_does_not_turn_on():
    spec = _spec({"normalize_obs": True, "normalize_reward": True, "reward_scale": 2.0}, RNN)
    chain = build_chain(spec, CTX)
    assert list(chain) == ["obs_norm", "obs_clip", "reward_scale", "reward_norm", "reward_clip", "history"]
    assert chain["obs_clip"].bounds == (-10.0, 10.0) and chain["reward_clip"].bounds == (-10.0, 10.0)
    assert build_chain(_spec({}), CTX) == {}
    atari = EnvContext(num_envs=1, observation_space=CTX.observation_space, atari=True)
    assert list(build_chain(_spec({}), atari)) == ["reward_clip"]
    assert build_chain(_spec({}), atari)["reward_clip"].bounds == (-1.0, 1.0)  # Mnih et al. 2015
    assert probe_env(spec).state_shape == (3, 4)  # the history's window space


# every env key a transform reads (the table in looplab/env/transforms/__init__.py), each set to turn it on
TRANSFORM_KEYS = {"normalize_obs": True, "clip_obs": 5.0, "reward_scale": 2.0, "normalize_reward": True,
                  "clip_reward": 1.0, "frame_stack": 2}


def test_no_transform_key_reaches_gymnasium_make():
    spec = _spec({**TRANSFORM_KEYS, "scale_obs": False, "device": "cpu", "sutton_barto_reward": True})
    assert env_kwargs(spec.env) == {"sutton_barto_reward": True}  # CartPole's own keyword
    # the keys above turn on every transform but the nets' history: a new transform's key belongs in the list
    assert set(build_chain(spec, CTX)) == set(TRANSFORMS) - {"history"}


def test_checkpoints_hold_each_transforms_state_by_name_and_frozen_envs_stay_put():
    spec = _spec({"num_envs": 2, "normalize_obs": True, "normalize_reward": True})
    env = Env(spec, seed=0)
    env.reset()
    for _ in range(20):
        env.step(env.sample_actions())
    saved = checkpoint.env_state(env)
    assert list(saved["transforms"]) == ["obs_norm", "obs_clip", "reward_norm", "reward_clip"]
    other = Env(spec, seed=0)
    # a checkpoint written before the transform chain kept the same names under `normalizers`
    checkpoint.load_env_state(other, {**{k: v for k, v in saved.items() if k != "transforms"},
                                      "normalizers": saved["transforms"]})
    np.testing.assert_array_equal(other.transforms["obs_norm"].rms.mean, env.transforms["obs_norm"].rms.mean)
    other.freeze()
    other.reset()
    for _ in range(20):
        other.step(other.sample_actions())
    assert other.transforms["obs_norm"].rms.count == env.transforms["obs_norm"].rms.count
    np.testing.assert_array_equal(other.transforms["reward_norm"].returns, env.transforms["reward_norm"].returns)
    env.close()
    other.close()


DROPPED = textwrap.dedent('''
    """A transform that exists only for the discovery test."""

    from looplab.env.transforms.base import TRANSFORMS, Transform


    @TRANSFORMS.register("negate_reward")
    class NegateReward(Transform):
        order = 35

        @classmethod
        def from_spec(cls, spec, ctx):
            return cls()

        def step(self, step):
            step.reward = -step.reward
''')


@pytest.fixture
def dropped_transform(tmp_path, monkeypatch):
    """`dropped_in.py` in a folder on the transforms package's path, and a registry that has not looked yet."""
    yield from drop_into_package(TRANSFORMS, transforms_pkg, DROPPED, tmp_path, monkeypatch)


def test_a_transform_file_dropped_into_the_folder_joins_the_chain_in_its_place(dropped_transform):
    assert "negate_reward" not in TRANSFORMS._items
    chain = build_chain(_spec({"reward_scale": 2.0, "normalize_reward": True}), CTX)
    assert list(chain) == ["reward_scale", "negate_reward", "reward_norm", "reward_clip"]
    step = _step([[0, 0], [0, 0]], reward=[1.0, -2.0])
    chain["reward_scale"].step(step)
    chain["negate_reward"].step(step)
    np.testing.assert_array_equal(step.reward, [-2.0, 4.0])


def test_frame_stack_concatenates_the_last_k_observations_oldest_first_zero_padded():
    from looplab.env.transforms.frame_stack import FrameStack

    fs = FrameStack.from_spec(_spec({"frame_stack": 3}), CTX)
    assert fs.observation_space(CTX.observation_space).shape == (6,)
    np.testing.assert_array_equal(fs.reset(np.array([[1, 2], [3, 4]], np.float32)),
                                  [[0, 0, 0, 0, 1, 2], [0, 0, 0, 0, 3, 4]])
    s = _step([[5, 6], [7, 8]])
    fs.step(s)
    np.testing.assert_array_equal(s.obs, [[0, 0, 1, 2, 5, 6], [0, 0, 3, 4, 7, 8]])
    assert s.next_state is s.obs  # no episode ended: one array, as the other observation transforms keep it
    s = _step([[9, 9], [1, 1]], next_state=[[9, 9], [-1, -1]], done=(False, True))  # env 1 ended, then reset
    fs.step(s)
    np.testing.assert_array_equal(s.next_state, [[1, 2, 5, 6, 9, 9], [3, 4, 7, 8, -1, -1]])  # the true successor
    np.testing.assert_array_equal(s.obs, [[1, 2, 5, 6, 9, 9], [0, 0, 0, 0, 1, 1]])  # a new episode's stack
    assert FrameStack.from_spec(_spec({"frame_stack": 1}), CTX) is None


def test_frame_stack_reaches_the_agent_and_is_refused_on_atari():
    env = Env(_spec({"frame_stack": 4, "num_envs": 2}), 0)
    try:
        assert env.info.state_shape == (16,) and env.reset().shape == (2, 16)
    finally:
        env.close()
    with pytest.raises(SpecError, match="env.frame_stack: Atari observations are stacks of 4 frames already"):
        _spec({"name": "ALE/Pong-v5", "frame_stack": 4})
