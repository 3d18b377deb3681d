"""Session processes forked from the fork server: fresh, with the trial's environment, and dying with the trial."""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pytest

from looplab.experiment import procs
from looplab.runfolder import alive


def _environ_value(key: str) -> str | None:
    return os.environ.get(key)


def _modules_loaded() -> bool:
    import sys

    return "looplab.experiment.session" in sys.modules and "torch._dynamo" in sys.modules


def _sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _pool(parent_pid: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, mp_context=procs.session_context(), initializer=procs.child_init,
                               initargs=(procs.child_setup(parent_pid),))


def test_a_session_process_has_the_environment_of_when_the_trial_starts_it(monkeypatch):
    procs.warm_up()
    monkeypatch.setenv("LOOPLAB_TEST_PROCS", "after the server started")
    with _pool(os.getpid()) as pool:
        assert pool.submit(_environ_value, "LOOPLAB_TEST_PROCS").result(timeout=120) == "after the server started"
        assert pool.submit(_modules_loaded).result(timeout=60)  # preloaded by the server, not imported again


@pytest.mark.skipif(procs.session_context().get_start_method() != "forkserver", reason="no fork server here")
def test_a_session_process_dies_with_its_trial():
    trial = subprocess.Popen(["sleep", "60"])  # stands in for the trial's process
    try:
        with _pool(trial.pid) as pool:
            first = pool.submit(_sleep, 0)
            child = first.result(timeout=120)
            long = pool.submit(_sleep, 60)
            time.sleep(0.5)
            trial.kill()
            trial.wait()
            with pytest.raises(BrokenProcessPool):
                long.result(timeout=10)
            assert not alive(child) or _zombie(child)
    finally:
        trial.kill()


def test_a_process_whose_trial_is_gone_exits_at_once():
    trial = subprocess.Popen(["true"])
    trial.wait()
    with _pool(trial.pid) as pool:
        with pytest.raises(BrokenProcessPool):
            pool.submit(_sleep, 0).result(timeout=120)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("error, expected", [(PermissionError, True), (ProcessLookupError, False), (None, True)])
def test_a_process_of_another_user_is_alive(monkeypatch, error, expected):
    def kill(pid, sig):
        if error is not None:
            raise error(1, "os.kill")

    monkeypatch.setattr(os, "kill", kill)
    assert alive(12345) is expected
    assert alive("not a pid") is False


def test_helper_threads_leave_sigint_and_sigterm_to_the_main_thread():
    import signal
    import threading

    from looplab.experiment.procs import start_daemon

    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    seen: list[set] = []
    done = threading.Event()

    def look() -> None:
        seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        done.set()

    start_daemon(look, "test-look")
    assert done.wait(10)
    assert {signal.SIGINT, signal.SIGTERM} <= seen[0]  # the kernel cannot hand them to this thread
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the main thread's mask is as it was
