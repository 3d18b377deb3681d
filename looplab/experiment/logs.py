"""Text logs: a file per run level in log/, and the console unless quiet."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s | %(levelname)s | PID:%(process)d | %(message)s"


def setup_logging(log_file: str | None, console: bool = True, level: int = logging.INFO) -> logging.Logger:
    log = logging.getLogger("looplab")
    log.setLevel(level)
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    if log_file:
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(logging.Formatter(FORMAT))
        log.addHandler(fh)
    if console:
        ch = logging.StreamHandler(sys.stderr)
        ch.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(ch)
    log.propagate = False
    return log
