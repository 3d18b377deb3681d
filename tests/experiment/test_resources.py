"""Resources checked before a run starts: the memory estimate and its refusal, and what a mode cannot do."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from looplab import io
from looplab.agent.memory import memory_class
from looplab.agent.memory.onpolicy import OnPolicyBatchReplay, OnPolicyBatchReplayConfig
from looplab.agent.memory.prioritized import PrioritizedReplay, PrioritizedReplayConfig
from looplab.agent.memory.replay import ReplayConfig
from looplab.env.make import EnvInfo
from looplab.experiment import resources
from tests.conftest import SLM_SPECS, only_run, run_cli
from tests.experiment.test_processes import marked

DQN = str(SLM_SPECS / "benchmark/dqn/dqn_cartpole.json")
SHORT = ["--set", "env.max_frame=200", "--set", "meta.log_frequency=100", "--set", "meta.tensorboard=false",
         "--set", "meta.max_session=1", "-q"]


class _Algo:
    training_start_step = 0
    training_frequency = 3
    time_horizon = 3


def _arrays_nbytes(mem: object) -> int:
    return sum(v.nbytes for v in vars(mem).values() if isinstance(v, np.ndarray)) + (
        mem.tree.tree.nbytes if hasattr(mem, "tree") else 0)


@pytest.mark.parametrize("obs", [gym.spaces.Box(-1, 1, (5,)), gym.spaces.Box(0, 255, (4, 12, 12), np.uint8)])
@pytest.mark.parametrize("kind", ["Replay", "PrioritizedReplay", "OnPolicyBatchReplay"])
def test_memory_estimates_match_the_arrays_memories_allocate(obs, kind):
    info = EnvInfo("x", 2, obs, gym.spaces.Box(-1, 1, (3,)))
    if kind == "Replay":
        config = ReplayConfig(name=kind, batch_size=4, max_size=64)
        # stacked uint8 images: frames stored once (ImageReplay)
        mem = memory_class(kind, info)(config, info, _Algo(), np.random.default_rng(0))
    elif kind == "PrioritizedReplay":
        config = PrioritizedReplayConfig(name=kind, batch_size=4, max_size=64)
        mem = PrioritizedReplay(config, info, _Algo(), np.random.default_rng(0))
    else:
        config = OnPolicyBatchReplayConfig(name=kind)
        mem = OnPolicyBatchReplay(config, info, _Algo(), np.random.default_rng(0))
    actual = _arrays_nbytes(mem)
    estimate = type(mem).estimate_nbytes(config, info, _Algo())
    assert actual * 0.95 <= estimate <= actual * 1.6 + 1024  # the sum tree is padded to a power of two


def test_memory_limit_and_cgroup_parsing(monkeypatch):
    assert resources.parse_bytes("8G") == 8 * 1024**3 and resources.parse_bytes("512MiB") == 512 * 1024**2
    assert resources.parse_bytes("1000") == 1000
    with pytest.raises(ValueError, match="LOOPLAB_MEMORY_LIMIT"):
        resources.parse_bytes("lots")
    monkeypatch.setenv(resources.LIMIT_VAR, "3G")
    assert resources.available_memory() == (3 * 1024**3, resources.LIMIT_VAR)
    monkeypatch.delenv(resources.LIMIT_VAR)
    avail, source = resources.available_memory()
    assert 0 < avail < 2**50 and source in ("MemAvailable", "cgroup memory limit")


def test_a_replay_too_big_for_the_memory_is_refused_before_anything_starts(data_dir):
    # 2e6 CartPole transitions (float16 states) are ~69 MiB: with the process itself, more than the 400 MiB allowed
    args = ["run", DQN, "dqn_epsilon_greedy_cartpole", "dev", "--set", "agent.memory.max_size=2000000", *SHORT[:-1]]
    env = {resources.LIMIT_VAR: "400M", "LOOPLAB_TEST_RUN_MARK": "refused-run"}
    proc = run_cli(*args, data_dir=data_dir, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    line = lines[0]
    assert "dqn_cartpole.json" in line and "400.0 MiB is available (LOOPLAB_MEMORY_LIMIT)" in line
    assert "lower agent.memory.max_size" in line and "--force" in line and "replay/memory 68.7 MiB" in line
    assert not any(data_dir.iterdir()) and marked("refused-run") == []
    proc = run_cli(*args, "--force", data_dir=data_dir, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "memory: about" in proc.stdout + proc.stderr  # dev prints the estimate
    status = io.read_json(only_run(data_dir) / "run.json")
    assert status["memory_estimate"]["memory"] == 2_000_000 * 36 and status["status"] == "finished"


def test_ray_address_is_refused_where_the_run_is_local(data_dir):
    proc = run_cli("run", DQN, "dqn_epsilon_greedy_cartpole", "dev", "--ray-address", "127.0.0.1:6379", *SHORT,
                   data_dir=data_dir)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--ray-address" in lines[0] and "train runs its sessions" in lines[0]
    assert not any(data_dir.iterdir())
