"""One Ray trial of a search, in a Ray worker: it runs LoopLab trial t{i} in a child process group
(`trial_process.py`) and reports, at each log checkpoint, the mean over sessions of `total_reward_ma` (and of
`total_reward`) read from the sessions' dataframes on disk.

Reading the files rather than hooking the session loop leaves Trial and Session untouched, keeps the Ray
worker out of the training processes' CPU time, and lets ASHA stop a trial by ending its process group
(sessions included) without help from the training code.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from looplab import io
from looplab.experiment.seeds import session_seed
from looplab.runfolder import RunPaths
from looplab.spec.search import TRIAL_KEY, apply_values

log = logging.getLogger("looplab")
METRIC, MODE = "total_reward_ma", "max"
POLL_S = 0.5


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
@dataclass
class TrialContext:
    """What a Ray trial needs, passed with the trainable: the resolved experiment spec and the run folder."""

    spec: dict
    file: str
    root: str
    name: str
    num_sessions: int
    env: dict[str, str]


def trial_spec(ctx: TrialContext, index: int, values: dict[str, Any]) -> dict:
    """The resolved spec of trial `index`: searched values set, no `search`, its own session seeds."""
    out = apply_values(ctx.spec, values)
    meta = out["meta"]
    meta["trial"] = index
    meta["session_seeds"] = [session_seed(meta["random_seed"], index, s) for s in range(ctx.num_sessions)]
    return out


def checkpoint_means(paths: RunPaths, index: int, num_sessions: int) -> list[dict]:
    """Per log checkpoint that every session has reached: the frame and the means over sessions."""
    dfs = []
    for s in range(num_sessions):
        p = paths.session_df(index, s)
        try:
            dfs.append(pd.read_csv(p, usecols=["frame", "total_reward", "total_reward_ma"]))
        except (OSError, ValueError, pd.errors.EmptyDataError):
            return []
    n = min(len(d) for d in dfs)
    out = []
    for i in range(n):
        ma = [float(d["total_reward_ma"].iat[i]) for d in dfs]
        ret = [float(d["total_reward"].iat[i]) for d in dfs]
        ma, ret = [v for v in ma if math.isfinite(v)], [v for v in ret if math.isfinite(v)]
        out.append({"frame": int(dfs[0]["frame"].iat[i]),
                    "total_reward_ma": sum(ma) / len(ma) if ma else float("nan"),
                    "total_reward": sum(ret) / len(ret) if ret else float("nan"),
                    "sessions": len(dfs)})
    return out


def ray_trial(config: dict, ctx: TrialContext) -> None:
    """The Ray Tune trainable: run LoopLab trial t{i} in a child process group and report its progress."""
    from ray import tune

    os.environ.update(ctx.env)
    index = int(config[TRIAL_KEY])
    values = {k: v for k, v in config.items() if k != TRIAL_KEY}
    paths = RunPaths(Path(ctx.root), ctx.name)
    spec = trial_spec(ctx, index, values)
    max_frame = int(float(spec["env"]["max_frame"]))
    spec_path = paths.spec(index)
    io.write_json(spec_path, spec)
    status_path = paths.trial_status(index)
    error_path = paths.trial_error(index)
    error_path.unlink(missing_ok=True)
    for old in paths.info_dir.glob(paths.session_dfs(index)):
        old.unlink()  # a restored trial starts over: its old rows must not be reported again
    status = {"trial": index, "ray_trial_id": tune.get_context().get_trial_id(), "config": values,
              "status": "running", "pid": os.getpid(), "started": time.time()}
    io.write_json(status_path, status)
    log_file = paths.log_file(index)
    with open(log_file, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "looplab.experiment.trial_process", str(spec_path), ctx.file, ctx.root,
             ctx.name, str(index)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            env={**os.environ, "LOOPLAB_SEARCH_RUN": ctx.root})  # marks the trial's processes, for audits
    reported = 0
    try:
        while True:
            done = proc.poll() is not None
            rows = checkpoint_means(paths, index, ctx.num_sessions)
            for row in rows[reported:]:
                if row["frame"] >= max_frame:  # ASHA stops a trial at max_t: the final report says it
                    break
                tune.report({**row, TRIAL_KEY: index})
            reported = max(reported, len([r for r in rows if r["frame"] < max_frame]))
            if done:
                break
            time.sleep(POLL_S)
        if proc.returncode != 0:
            try:
                message = io.read_json(error_path)["error"]
            except (OSError, ValueError, KeyError):
                message = f"trial process exited with code {proc.returncode}; see {log_file}"
            status.update(status="failed", error=message, finished=time.time())
            io.write_json(status_path, status)
            raise RuntimeError(f"trial {paths.prename(index)} failed: {message}")
        metrics = io.read_json(paths.trial_metrics(index))
        status.update(status="finished", finished=time.time())
        io.write_json(status_path, status)
        final = {k: v for k, v in metrics.items() if finite(v)}
        final.setdefault("frame", rows[-1]["frame"] if rows else 0)
        tune.report({**final, TRIAL_KEY: index})
    finally:
        if proc.poll() is None:  # stopped by the scheduler (or the experiment is ending): end the trial
            frame = rows[-1]["frame"] if (rows := checkpoint_means(paths, index, ctx.num_sessions)) else 0
            status.update(status="stopped", frame=frame, finished=time.time())
            io.write_json(status_path, status)
        # always: the group is the trial's alone, and a session process must never outlive its trial
        end_process_group(proc)


def end_process_group(proc: subprocess.Popen) -> None:
    """SIGKILL the trial's process group at once: a graceful SIGTERM lets session processes outlive their
    leader (they handle it) while Ray may kill this worker any moment after a stop; the session files are
    written atomically, so the rows already logged stay whole."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        log.error("trial process %d did not end after SIGKILL", proc.pid)


def trial_dirname(trial: Any) -> str:
    return f"t{trial.config.get(TRIAL_KEY)}_{trial.trial_id}"
