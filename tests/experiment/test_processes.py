"""Nothing outlives its run: SIGKILL of `looplab run` ends every process it started within seconds."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from looplab import faults
from looplab.env.pool import usable_cores
from tests.conftest import ROOT, SLM_SPECS

MARK = "LOOPLAB_TEST_RUN_MARK"  # in the environment of every process of the run under test


def marked(mark: str) -> list[int]:
    """Live processes whose environment carries the mark (a zombie's environment reads empty)."""
    needle = f"{MARK}={mark}".encode()
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if needle in (d / "environ").read_bytes().split(b"\0"):
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def state(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def start(args: list[str], mark: str, signal_at: str, data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, MARK: mark, faults.SIGNAL_AT: signal_at}
    return subprocess.Popen([sys.executable, "-m", "looplab.cli", "run", *args, "-q", "--data-dir", str(data_dir)],
                            env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def kill_when_paused(proc: subprocess.Popen, mark: str, paused: int, at_least: int, timeout: float = 240) -> list[int]:
    """Once `paused` processes of the run have stopped themselves (LOOPLAB_SIGNAL_AT=...:STOP), SIGKILL the
    parent; returns what was still alive 5 s later."""
    end = time.time() + timeout
    try:
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            pids = marked(mark)
            if sum(state(p) in ("T", "t") for p in pids) >= paused:
                break
            assert time.time() < end, f"the run did not reach its pause in {timeout:g} s"
            time.sleep(0.2)
        assert len(pids) >= at_least, pids  # the run's own processes, all there
        proc.kill()
        proc.wait()
        end = time.time() + 30  # each exits at once; a loaded machine may take seconds to run them to it
        while marked(mark) and time.time() < end:
            time.sleep(0.1)
        return marked(mark)
    finally:
        for pid in marked(mark):  # never leave anything behind, even when the test fails
            os.kill(pid, signal.SIGKILL)


def test_sigkill_of_a_32_env_async_session_ends_its_env_workers(data_dir):
    mark = secrets.token_hex(8)
    proc = start([str(SLM_SPECS / "benchmark/ppo/ppo_mujoco.json"), "ppo_mujoco", "dev", "-s", "env=Hopper-v5",
                  "-s", "max_frame=1e6", "--set", "env.num_envs=32", "--set", "env.vectorization_mode=async",
                  "--set", "meta.env_workers=2", "--set", "agent.algorithm.time_horizon=8",
                  "--set", "meta.tensorboard=false"], mark, "64:STOP", data_dir)
    # the session (the command itself in dev mode) pauses at frame 64, its two env workers up and idle
    assert kill_when_paused(proc, mark, paused=1, at_least=3) == []


def test_sigkill_of_a_two_session_trial_ends_sessions_manager_and_env_workers(data_dir):
    mark = secrets.token_hex(8)
    proc = start([str(SLM_SPECS / "benchmark/ppo/ppo_cartpole.json"), "ppo_cartpole", "train",
                  "--set", "meta.max_session=2", "--set", "env.num_envs=4", "--set", "env.vectorization_mode=async",
                  "--set", "meta.env_workers=2", "--set", "env.max_frame=1000000",
                  "--set", "meta.tensorboard=false"], mark, "40:STOP", data_dir)
    # command + progress manager + each running session process with its 2 env workers
    running = min(2, usable_cores())
    assert kill_when_paused(proc, mark, paused=running, at_least=2 + 3 * running) == []
