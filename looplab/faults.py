"""Faults injected through environment variables, so that a test stops a run at a point it chooses.

- `LOOPLAB_SIGNAL_AT=[PRENAME@]FRAME:SIGNAL`: a session sends SIGNAL (KILL, TERM, INT or STOP) to its own
  process once its frame reaches FRAME, at the end of that step (after the step's log checkpoint, if it
  has one). With PRENAME, only sessions whose name starts with it do (e.g. `ppo_cartpole_t1`).
- `LOOPLAB_DISK_FULL=GLOB[:N]`: from the N-th atomic write (default 1) of a file whose name matches GLOB
  on, every atomic write of the process fails with ENOSPC, as on a full disk.

Neither is set in normal use; then each costs one comparison per step or per write.
"""

from __future__ import annotations

import errno
import fnmatch
import math
import os
import signal
from pathlib import Path

SIGNAL_AT = "LOOPLAB_SIGNAL_AT"
DISK_FULL = "LOOPLAB_DISK_FULL"
_SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "INT": signal.SIGINT, "STOP": signal.SIGSTOP}


class SelfSignal:
    """The frame at which a session signals itself (infinite when no fault is set for it)."""

    def __init__(self, prename: str):
        self.frame: float = math.inf
        self.signum = 0
        value = os.environ.get(SIGNAL_AT, "")
        if not value:
            return
        who, _, at = value.rpartition("@")
        frame, _, name = at.partition(":")
        if who and not prename.startswith(who):
            return
        try:
            self.frame, self.signum = int(frame), int(_SIGNALS[name.upper()])
        except (ValueError, KeyError):
            raise ValueError(f"{SIGNAL_AT}={value!r}: expected [PRENAME@]FRAME:{'|'.join(_SIGNALS)}") from None

    def fire(self) -> None:
        """Send the signal, once."""
        self.frame = math.inf
        os.kill(os.getpid(), self.signum)


class _DiskFull:
    def __init__(self) -> None:
        self.matched = 0

    def check(self, path: Path) -> None:
        """Raise ENOSPC where LOOPLAB_DISK_FULL says the disk is full by now."""
        value = os.environ.get(DISK_FULL, "")
        if not value:
            return
        pattern, _, nth = value.partition(":")
        if fnmatch.fnmatch(path.name, pattern):
            self.matched += 1
        if self.matched >= int(nth or 1):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


DISK = _DiskFull()
