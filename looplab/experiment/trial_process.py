"""The child process of a Ray trial: runs LoopLab trial t{i} in the search's run folder.

`python -m looplab.experiment.trial_process SPEC_PATH SPEC_FILE ROOT NAME INDEX`; it dies with its
process group when the Ray worker that started it dies.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from looplab import io
from looplab.agent.validate import validate_spec
from looplab.env.pool import die_with_parent
from looplab.experiment.logs import setup_logging
from looplab.experiment.procs import start_daemon
from looplab.experiment.trial import Trial
from looplab.runfolder import RunPaths

log = logging.getLogger("looplab")


def run_trial_process(spec_path: str, file: str, root: str, name: str, index: int) -> int:
    """Child process: run LoopLab Trial t{index}; dies with its process group if its Ray worker dies."""
    parent = os.getppid()
    die_with_parent(parent)  # even when stopped (SIGSTOP), where the watchdog below cannot run

    def watchdog() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os.killpg(0, signal.SIGKILL)

    start_daemon(watchdog, "looplab-trial-watchdog")
    paths = RunPaths(Path(root), name)
    setup_logging(str(paths.log_file(index)), console=False)
    try:
        spec_dict = io.read_json(spec_path)
        spec = validate_spec(spec_dict, file, check_env=False)
        Trial(spec, spec_dict, file, paths, index, "train", quiet=True).run()
    except BaseException as e:  # recorded for the experiment, which goes on
        message = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
        log.error("trial %s failed: %s\n%s", paths.prename(index), message, traceback.format_exc())
        io.write_json(paths.trial_error(index),
                      {"error": message, "traceback": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__" and len(sys.argv) == 6:
    sys.exit(run_trial_process(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
