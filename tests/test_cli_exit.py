"""The command's exit: at once when nothing is left running, by the ordinary exit (atexit handlers, joins)
otherwise; the code is kept either way."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import atexit, sys, threading, time
atexit.register(lambda: print("cleanup ran", flush=True))
print("output before", end="")  # unflushed: leave() must flush it
if sys.argv[1] == "thread":
    threading.Thread(target=time.sleep, args=(0.3,)).start()  # not a daemon: the exit must wait for it
from looplab.cli import leave
leave(int(sys.argv[2]))
"""


@pytest.mark.parametrize("busy, code", [("idle", 0), ("idle", 3), ("thread", 5)])
def test_leave_skips_the_teardown_only_when_nothing_is_left_running(busy, code):
    out = subprocess.run([sys.executable, "-c", PROBE, busy, str(code)], capture_output=True, text=True, timeout=60)
    assert out.returncode == code
    assert out.stdout.startswith("output before")
    # idle: straight out, so the atexit handler never runs; a live thread: the ordinary exit, handlers included
    assert ("cleanup ran" in out.stdout) == (busy == "thread")


def test_a_command_error_keeps_its_exit_code_and_message(tmp_path):
    out = subprocess.run([sys.executable, "-m", "looplab.cli", "run", str(tmp_path / "missing.json"), "x", "train"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.startswith("looplab: error:") and "missing.json" in out.stderr
