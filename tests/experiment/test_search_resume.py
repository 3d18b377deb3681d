"""An interrupted search is marked interrupted, exits 130, and `search@RUN_DIR` finishes only what is missing."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from looplab import faults
from tests.conftest import ROOT, only_run, run_cli
from tests.experiment.test_search import SEARCH_TIMEOUT, search_spec


@pytest.mark.slow
def test_interrupted_search_resumes_to_completion(tmp_path, data_dir):
    path = search_spec(tmp_path, {"agent.algorithm.lam__uniform": [0.8, 0.99]}, max_trial=4)
    spec = json.loads(path.read_text())
    spec["search_cartpole"]["env"]["max_frame"] = 3000
    spec["search_cartpole"]["meta"]["max_session"] = 1
    path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "looplab.cli", "run", str(path), "search_cartpole", "search", "--quiet",
           "--data-dir", str(data_dir)]
    # trial t1 pauses itself at frame 1000 (SIGSTOP), so the search cannot end before the interrupt comes
    env = {**os.environ, faults.SIGNAL_AT: "search_cartpole_t1_s0@1000:STOP"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + SEARCH_TIMEOUT
    # interrupt once the first trial has finished and a later one has started
    while time.time() < deadline and proc.poll() is None:
        runs = list(data_dir.glob("*/search_cartpole_t0_trial_metrics_scalar.json"))
        if runs and list(data_dir.glob("*/search_cartpole_t1_spec.json")):
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the search ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    run = only_run(data_dir)
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"

    resumed = run_cli("run", str(path), "search_cartpole", f"search@{run}", "--quiet", data_dir=data_dir,
                      timeout=SEARCH_TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert only_run(data_dir) == run  # the same folder, no new run
    df = pd.read_csv(run / "search_cartpole_experiment_df.csv")
    assert sorted(df["trial"]) == [0, 1, 2, 3]
    assert (df["status"] == "finished").all() and (df["frame"] == 3000).all()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_swallowed_by_library_code_still_ends_the_search_at_tunes_next_step(sig, code, tmp_path):
    """A stop signal's handler raises in whatever code the main thread runs; where that code swallows the
    exception, the signal it recorded ends the search after Tune's next step, with the signal's exit code."""
    from looplab.experiment import search
    from looplab.experiment.stop import STOP, Interrupted, raise_interrupted
    from looplab.runfolder import RunPaths

    callback = search._progress_callback(RunPaths(tmp_path, "search_cartpole"))
    STOP.signum = 0
    try:
        callback.on_step_end(iteration=1, trials=[])  # no signal: Tune goes on
        with pytest.raises(Interrupted):  # what the main thread gets, unless the code it is in swallows it
            raise_interrupted(sig, None)
        with pytest.raises(Interrupted) as stopped:
            callback.on_step_end(iteration=2, trials=[])
        assert stopped.value.exit_code == code
    finally:
        STOP.signum = 0
