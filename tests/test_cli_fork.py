"""The tests' command server (tests/cli_fork.py) stands for `python -m looplab.cli`: the same exit codes and
output, a signal's negative status, a timeout, and a real subprocess where a fork cannot stand for one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli_fork import Forks
from tests.conftest import ROOT, TEST_SPECS

SPEC = "looplab/spec/library/a2c_cartpole.json"


@pytest.fixture(scope="module")
def forks():
    f = Forks()
    yield f
    f.stop()


def real(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "looplab.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_a_bad_spec_gives_the_same_line_and_code_as_a_new_interpreter(forks, data_dir):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    args = ["run", str(TEST_SPECS / "bad_specs" / "bad_optimizer_arg.json"), "x", "train", "--data-dir",
            str(data_dir)]
    forked, spawned = forks.run(args, env, 120), real(args, env)
    assert forked is not None
    assert forked.returncode == spawned.returncode == 2
    assert forked.stderr == spawned.stderr and forked.stderr.startswith("looplab: error: ")
    assert forked.stdout == spawned.stdout
    for _ in range(3):  # a command that ends at once: its pid and its status reach the client together
        quick = forks.run(["no-such-command"], env, 30)
        assert quick is not None and quick.returncode == 2 and quick.stderr.startswith("looplab: error: ")


def test_a_run_its_environment_and_a_signal_that_ends_it(forks, data_dir, tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "0", "LOOPLAB_DATA_DIR": str(data_dir)}
    args = ["run", SPEC, "a2c_cartpole", "train", "--set", "env.max_frame=600", "--set", "meta.log_frequency=200",
            "--set", "meta.max_session=1", "-q"]
    done = forks.run(args, env, 300)
    assert done is not None and done.returncode == 0, done.stderr
    assert "run folder: " + str(data_dir) in done.stdout  # the data folder from the request's environment
    other = tmp_path / "other"
    killed = forks.run(args, {**env, "LOOPLAB_DATA_DIR": str(other), "LOOPLAB_SIGNAL_AT": "400:KILL"}, 300)
    assert killed is not None and killed.returncode == -9
    assert len(list(other.iterdir())) == 1  # the next fork took the new environment, not the first one's


def test_a_command_past_its_timeout_is_killed(forks, data_dir):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    args = ["run", SPEC, "a2c_cartpole", "train", "--set", "env.max_frame=10000000", "--set", "meta.max_session=1",
            "-q", "--data-dir", str(data_dir)]
    assert forks.run(["keys"], env, 120) is not None  # the server is up: the timeout is the command's alone
    with pytest.raises(subprocess.TimeoutExpired):
        forks.run(args, env, 3)
    after = forks.run(["keys"], env, 120)  # the server answers the next command
    assert after is not None and after.returncode == 0


@pytest.mark.parametrize("key", ["PYTHONPATH", "OMP_NUM_THREADS", "MPLBACKEND", "PYTHONHASHSEED"])
def test_a_variable_read_at_start_up_asks_for_a_real_subprocess(forks, key):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    assert forks.fits(env)
    assert not forks.fits({**env, key: "1" if env.get(key) != "1" else "2"})
    assert forks.run(["keys"], {**env, key: "7"}, 60) is None
