"""A stop of a whole process group prints no thread tracebacks: the progress pump ends when the manager goes,
and the executor thread's InvalidStateError about futures the trial cancelled is dropped, during a stop only."""

from __future__ import annotations

import threading
from concurrent.futures import InvalidStateError
from concurrent.futures.process import _ExecutorManagerThread

import pytest

from looplab.experiment import trial
from looplab.experiment.stop import STOP


class GoneQueue:
    def __init__(self, error: type[Exception]):
        self.error = error

    def get(self):
        raise self.error


@pytest.mark.parametrize("error", [EOFError, ConnectionResetError, BrokenPipeError])
def test_the_pump_ends_quietly_when_the_manager_is_gone(error):
    seen = []
    trial._pump(GoneQueue(error), type("View", (), {"update": seen.append})())
    assert seen == []


def args_for(exc: BaseException, thread: threading.Thread) -> threading.ExceptHookArgs:
    return threading.ExceptHookArgs((type(exc), exc, exc.__traceback__, thread))


@pytest.fixture
def default_hook(monkeypatch):
    calls = []
    monkeypatch.setattr(trial, "_THREAD_EXCEPTHOOK", calls.append)
    return calls


def test_the_executors_invalid_state_error_is_dropped_during_a_stop_only(default_hook, monkeypatch):
    thread = _ExecutorManagerThread.__new__(_ExecutorManagerThread)  # its class is all the hook looks at
    noise = args_for(InvalidStateError("CANCELLED: <Future state=cancelled>"), thread)
    monkeypatch.setattr(STOP, "signum", 15)
    trial._quiet_stop_excepthook(noise)
    assert default_hook == []
    monkeypatch.setattr(STOP, "signum", 0)
    trial._quiet_stop_excepthook(noise)  # not during a stop: a real error, reported
    assert default_hook == [noise]


def test_other_thread_errors_are_reported_during_a_stop(default_hook, monkeypatch):
    monkeypatch.setattr(STOP, "signum", 15)
    other = args_for(InvalidStateError("x"), threading.Thread())
    value_error = args_for(ValueError("y"), _ExecutorManagerThread.__new__(_ExecutorManagerThread))
    trial._quiet_stop_excepthook(other)
    trial._quiet_stop_excepthook(value_error)
    assert default_hook == [other, value_error]
