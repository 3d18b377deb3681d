"""Replay: circular writes of vector steps, readiness, uniform and CER sampling, checkpoint round trip."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np

from looplab.agent.memory.replay import Replay, ReplayConfig
from looplab.env.make import EnvInfo


def make_replay(num_envs=2, max_size=6, batch_size=4, use_cer=False, start=None, freq=None, obs_dtype=np.float32,
                cer_items="unseen", state_dtype="float32"):
    info = EnvInfo("test", num_envs, gym.spaces.Box(0, 255, (3,), dtype=obs_dtype), gym.spaces.Discrete(2))
    cfg = ReplayConfig(name="Replay", batch_size=batch_size, max_size=max_size, use_cer=use_cer, cer_items=cer_items,
                       state_dtype=state_dtype)
    algo = SimpleNamespace(training_start_step=start, training_frequency=freq)
    return Replay(cfg, info, algo, np.random.default_rng(0))


def add_steps(mem, n, start=0):
    N = mem.num_envs
    for t in range(start, start + n):
        s = np.full((N, 3), t, dtype=np.float32) + np.arange(N)[:, None] * 0.1
        mem.add(s, np.full(N, t % 2), np.full(N, float(t)), s + 1, np.zeros(N), np.zeros(N))


def test_circular_write_keeps_newest_per_env_transitions():
    mem = make_replay(num_envs=2, max_size=6)
    add_steps(mem, 4)  # 8 transitions into 6 slots
    assert mem.size == 6 and mem.seen_size == 8 and mem.head == 2
    assert sorted(mem.rewards.tolist()) == [1, 1, 2, 2, 3, 3]
    # slots 0,1 hold step 3 (env 0 and env 1)
    np.testing.assert_allclose(mem.states[0:2, 0], [3.0, 3.1], rtol=1e-6)
    np.testing.assert_allclose(mem.next_states[0:2, 0], [4.0, 4.1], rtol=1e-6)


def test_states_float32_images_uint8():
    assert make_replay().states.dtype == np.float32
    assert make_replay(obs_dtype=np.uint8).states.dtype == np.uint8
    assert make_replay(obs_dtype=np.uint8, state_dtype="float16").states.dtype == np.uint8


def test_float16_states_by_default_as_slm_lab_stores_them_and_float32_batches():
    assert ReplayConfig(name="Replay", batch_size=4, max_size=6).state_dtype == "float16"
    mem = make_replay(num_envs=2, max_size=6, state_dtype="float16")
    add_steps(mem, 4)
    assert mem.states.dtype == np.float16 and mem.next_states.dtype == np.float16
    assert mem.states[1, 0] == np.float16(3.1) == 3.099609375  # float16's nearest, 3.1 to 3 significant digits
    batch = mem.sample()
    assert batch["states"].dtype == np.float32 and batch["next_states"].dtype == np.float32
    np.testing.assert_array_equal(batch["states"], mem.states[batch["indices"]].astype(np.float32))


def test_float16_halves_the_states_bytes():
    info = EnvInfo("test", 1, gym.spaces.Box(-1, 1, (100,), dtype=np.float32), gym.spaces.Discrete(2))
    half, full = (Replay.estimate_nbytes(ReplayConfig(name="Replay", batch_size=4, max_size=1000, state_dtype=d),
                                         info, None) for d in ("float16", "float32"))
    assert full - half == 1000 * 2 * 100 * 2  # states and next states, 2 bytes less per value


def test_float16_warns_once_where_a_state_is_out_of_its_range(caplog):
    mem = make_replay(num_envs=1, max_size=10, state_dtype="float16")  # even beyond the space's declared bounds
    s = np.array([[1.0, 70000.0, 0.0]], dtype=np.float32)
    with caplog.at_level("WARNING"):
        for _ in range(3):
            mem.add(s, np.zeros(1), np.zeros(1), s, np.zeros(1), np.zeros(1))
    warnings = [r for r in caplog.records if "float16" in r.getMessage()]
    assert len(warnings) == 1 and "state_dtype: float32" in warnings[0].getMessage()
    assert np.isinf(mem.states[0, 1]) and mem.states[0, 0] == 1.0  # the rest of the state is stored as it is


def test_ready_after_start_step_and_every_training_frequency_frames():
    mem = make_replay(num_envs=2, max_size=100, batch_size=4, start=5, freq=4)
    ready = []
    for t in range(8):
        add_steps(mem, 1, t)
        ready.append(mem.ready)
    # seen 2,4,6,...: first > 5 at 6 (6 frames since start >= 4), then every 4 frames = 2 vector steps
    assert ready == [False, False, True, False, True, False, True, False]


def test_default_start_step_is_batch_size():
    mem = make_replay(num_envs=1, max_size=100, batch_size=4)
    add_steps(mem, 4)
    assert not mem.ready
    add_steps(mem, 1, 4)
    assert mem.ready


def test_uniform_sampling_covers_buffer_evenly():
    mem = make_replay(num_envs=2, max_size=6, batch_size=6)
    add_steps(mem, 3)
    batch = mem.sample(6000)  # many draws at once: a batch larger than a spec may ask for
    counts = np.bincount(batch["indices"], minlength=6) / 6000
    np.testing.assert_allclose(counts, 1 / 6, atol=0.02)
    np.testing.assert_array_equal(batch["rewards"], mem.rewards[batch["indices"]])
    assert batch["states"].shape == (6000, 3)


def test_cer_latest_puts_newest_vector_step_in_every_batch():
    mem = make_replay(num_envs=2, max_size=50, batch_size=8, use_cer=True, cer_items="latest")
    add_steps(mem, 10)
    for _ in range(5):
        batch = mem.sample()
        assert set(batch["rewards"][-2:].tolist()) == {9.0}
        np.testing.assert_array_equal(batch["indices"][-2:], [18, 19])


def test_cer_unseen_puts_each_new_transition_into_one_batch():
    """SLM Lab's CER: the transitions added since the previous batch fill its last slots, once."""
    mem = make_replay(num_envs=2, max_size=50, batch_size=4, use_cer=True)
    add_steps(mem, 3)  # transitions 0..5
    np.testing.assert_array_equal(mem.sample()["indices"], [0, 1, 2, 3])  # 6 unseen: the oldest 4 fill the batch
    np.testing.assert_array_equal(mem.sample()["indices"][-2:], [4, 5])  # then the other 2
    assert mem.cer_seen == 6
    add_steps(mem, 1, 3)  # transitions 6, 7
    np.testing.assert_array_equal(mem.sample()["indices"][-2:], [6, 7])
    batch = mem.sample()  # nothing new: a plain uniform batch
    assert mem.cer_seen == 8 and len(batch["indices"]) == 4


def test_cer_unseen_skips_overwritten_transitions():
    mem = make_replay(num_envs=2, max_size=6, batch_size=4, use_cer=True)
    add_steps(mem, 5)  # 10 transitions into 6 slots: 0..3 are gone
    np.testing.assert_array_equal(mem.sample()["indices"], [4 % 6, 5 % 6, 6 % 6, 7 % 6])
    np.testing.assert_array_equal(mem.sample()["indices"][-2:], [8 % 6, 9 % 6])


def test_state_dict_round_trip_reproduces_samples():
    mem = make_replay(num_envs=2, max_size=6, batch_size=5, use_cer=True)
    add_steps(mem, 5)
    mem.sample()
    add_steps(mem, 1, 5)
    d = mem.state_dict()
    other = make_replay(num_envs=2, max_size=6, batch_size=5, use_cer=True)
    other.load_state_dict(d)
    other.rng.bit_generator.state = mem.rng.bit_generator.state  # the session's stream, saved with the session
    a, b = mem.sample(), other.sample()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert (other.head, other.size, other.seen_size, other.cer_seen) == (mem.head, mem.size, mem.seen_size,
                                                                          mem.cer_seen)
