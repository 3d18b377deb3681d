"""The env worker pool: a few processes for many envs, the same observations as a sync vector env, exact
state capture for resume."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from looplab.agent.validate import validate_spec
from looplab.env.make import Env
from looplab.env.pool import WorkerPoolVectorEnv, usable_cores, worker_count
from looplab.experiment import checkpoint


def _spec(name: str, num_envs: int, mode: str, **meta) -> object:
    raw = {"agent": {"algorithm": {"name": "SoftActorCritic", "gamma": 0.9},
                     "memory": {"name": "Replay", "batch_size": 8, "max_size": 100}, "net": {"type": "MLPNet"}},
           "env": {"name": name, "num_envs": num_envs, "max_frame": 1000, "vectorization_mode": mode},
           "meta": {"max_session": 1, **meta}}
    return validate_spec(raw, spec_name="t")


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def run(env: Env, steps: int, seed: int = 1) -> list[tuple]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        action = rng.uniform(-1, 1, size=(env.num_envs, *env.single_action_space.shape)).astype(np.float32)
        out.append(env.step(action))
    return out


def test_worker_count_is_bounded_by_cores_not_envs():
    assert worker_count(2048) == min(2048, usable_cores()) <= len(os.sched_getaffinity(0))
    assert worker_count(2048, 3) == 3 and worker_count(2, 8) == 2 and worker_count(1) == 1


def test_64_mujoco_envs_on_a_few_workers_step_like_a_sync_vector_env():
    before = set(children(os.getpid()))
    pool = Env(_spec("Hopper-v5", 64, "async", env_workers=2), seed=7)
    sync = Env(_spec("Hopper-v5", 64, "sync"), seed=7)
    try:
        assert isinstance(pool.venv, WorkerPoolVectorEnv) and len(pool.venv.processes) == 2
        started = set(children(os.getpid())) - before
        assert {p.pid for p in pool.venv.processes} <= started and len(started) <= 3  # + multiprocessing's tracker
        assert np.array_equal(pool.reset(), sync.reset())
        # 64 envs x 8 steps = 512 frames; Hopper's random episodes end within them, so autoresets are compared too
        a, b = run(pool, 8 * 4), run(sync, 8 * 4)
        for x, y in zip(a, b, strict=True):
            for u, v in zip(x, y, strict=True):
                assert np.array_equal(u, v)
        assert pool.episodes == sync.episodes > 0 and pool.returns == sync.returns
    finally:
        pool.close()
        sync.close()
    assert not any(p.is_alive() for p in pool.venv.processes)


@pytest.mark.parametrize("target", ["async", "sync"])
def test_pool_state_restores_exactly_into_a_pool_or_a_sync_vector_env(target):
    source = Env(_spec("HalfCheetah-v5", 8, "async", env_workers=2), seed=3)
    other = Env(_spec("HalfCheetah-v5", 8, target, env_workers=2), seed=99)
    try:
        source.reset()
        other.reset()
        run(source, 20)
        saved = checkpoint.env_state(source)
        assert len(saved["subs"]) == 8 and all(s["exact"] for s in saved["subs"])
        assert checkpoint.load_env_state(other, saved) is None  # nothing to restart: MuJoCo is exact
        for x, y in zip(run(source, 10, seed=5), run(other, 10, seed=5), strict=True):
            assert np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
    finally:
        source.close()
        other.close()
