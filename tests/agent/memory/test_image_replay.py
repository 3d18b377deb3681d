"""ImageReplay: frames stored once as uint8, states and next states rebuilt exactly."""

from __future__ import annotations

import numpy as np
import pytest

from looplab.agent.memory import memory_class
from looplab.agent.memory.image_replay import ImageReplay
from looplab.agent.memory.replay import Replay, ReplayConfig
from looplab.agent.validate import validate_spec
from looplab.env.make import EnvInfo

ATARI = {"agent": {"algorithm": {"name": "SoftActorCritic", "action_pdtype": "Categorical"},
                   "memory": {"name": "Replay", "batch_size": 32, "max_size": 600},
                   "net": {"type": "ConvNet", "normalize": True}},
         "env": {"name": "ALE/Breakout-v5", "num_envs": 2, "max_frame": 1000, "life_loss_info": True},
         "meta": {"max_session": 1}}


class _Algo:
    training_start_step = 0
    training_frequency = 1


def _memory(env_info, max_size: int = 600) -> Replay:
    return memory_class("Replay", env_info)(ReplayConfig(name="Replay", batch_size=min(32, max_size), max_size=max_size),
                                            env_info,
                                            _Algo(), np.random.default_rng(0))


def test_replay_of_stacked_images_is_an_image_replay_storing_each_frame_once():
    import gymnasium as gym

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    info = EnvInfo("x", 4, space, gym.spaces.Discrete(3))
    mem = _memory(info, max_size=1_000_000)
    assert isinstance(mem, ImageReplay)
    frame = 84 * 84
    # one frame per transition plus a small ring margin; no next_states, no stacked copies
    assert mem.frames.nbytes < 1.1 * 1_000_000 * frame
    assert not hasattr(mem, "states") and not hasattr(mem, "next_states")
    assert mem.nbytes < 8.0e9  # 1e6 Atari transitions fit in < 8 GB (vs ~56 GB storing both stacks)


def test_samples_rebuild_the_exact_states_of_a_real_atari_run():
    from looplab.env.make import Env

    spec = validate_spec(ATARI, spec_name="atari")
    env = Env(spec, seed=3)
    mem = _memory(env.info, max_size=600)
    assert isinstance(mem, ImageReplay)
    rng = np.random.default_rng(0)
    kept: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
    state = env.reset()
    done_seen = 0
    for _ in range(500):  # 1000 transitions into 600 slots: the rings wrap
        action = rng.integers(0, env.info.action_dim, size=2)
        obs, reward, term, trunc, next_state = env.step(action)
        slots = (mem.head + np.arange(2)) % mem.max_size
        mem.add(state, action, reward, next_state, term, trunc)
        for e, slot in enumerate(slots):
            kept[int(slot)] = (state[e].copy(), next_state[e].copy(), float(term[e]))
        done_seen += int((term | trunc).sum())
        state = obs
    env.close()
    assert done_seen > 0  # episode boundaries (life losses) are crossed
    batch = mem.sample(256)
    assert batch["states"].dtype == np.uint8 and batch["states"].shape == (256, 4, 84, 84)
    for i, slot in enumerate(batch["indices"]):
        s, ns, term = kept[int(slot)]
        assert np.array_equal(batch["states"][i], s)
        assert np.array_equal(batch["next_states"][i], ns)
        assert batch["terminateds"][i] == term
    # checkpoint round trip
    mem2 = _memory(env.info, max_size=600)
    mem2.load_state_dict(mem.state_dict())
    idx = batch["indices"][:16]
    assert np.array_equal(mem2.gather(idx)["next_states"], mem.gather(idx)["next_states"])


def test_unstacked_images_are_rejected():
    import gymnasium as gym

    info = EnvInfo("x", 1, gym.spaces.Box(0, 255, (3, 8, 8), np.uint8), gym.spaces.Discrete(2))
    mem = _memory(info, max_size=10)
    rng = np.random.default_rng(0)
    s, ns = rng.integers(0, 255, (2, 1, 3, 8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="frame-stacked"):
        mem.add(s, np.zeros(1, np.int64), np.zeros(1), ns, np.zeros(1, bool), np.zeros(1, bool))
