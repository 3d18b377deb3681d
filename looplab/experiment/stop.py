"""Clean stops: SIGINT and SIGTERM become a request that the session loop reads once per step, so a run
saves its checkpoints, analysis and report before it exits with 128 + the signal's number."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal after saving its state; exit code 128 + signal number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


class StopFlag:
    """Set by the signal handler, read once per vector step by the session loop."""

    def __init__(self) -> None:
        self.signum = 0
        self.forward: list[int] = []  # session process ids the signal is passed on to
        self.force_on_repeat = True

    def handler(self, signum: int, frame: Any) -> None:
        if self.signum:
            if self.force_on_repeat:  # a second Ctrl-C: stop now, without the final checkpoint
                raise KeyboardInterrupt
            return
        self.signum = signum
        for pid in list(self.forward):
            try:
                os.kill(pid, signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)
            except OSError:
                pass


STOP = StopFlag()


def install_stop_handlers(force_on_repeat: bool = True, reset: bool = True) -> None:
    """Turn SIGINT/SIGTERM into a request to stop at the next step (main thread only).

    Session processes get the terminal's Ctrl-C and the parent's forwarded signal: they never force,
    and keep a stop request across sessions (a queued session must not start after the stop).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if reset:
        STOP.signum = 0
    STOP.forward = []
    STOP.force_on_repeat = force_on_repeat
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, STOP.handler)


def restore_default_handlers() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def raise_interrupted(signum: int, frame: Any) -> None:
    """A handler that stops at once, as Ctrl-C does (the search, whose trials stop in their own processes).
    It also records the signal in STOP, for a loop to read where library code running in the main thread
    swallowed the exception (`raise_if_stopped`)."""
    STOP.signum = STOP.signum or signum
    raise Interrupted(signum)


def raise_if_stopped() -> None:
    """Raise the Interrupted of a stop signal recorded in STOP, if any."""
    if STOP.signum:
        raise Interrupted(STOP.signum)
