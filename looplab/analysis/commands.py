"""The analysis commands: `looplab report`, `plot` and `analyze`, all from run folders' files (`list`: runs.py)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from looplab import io
from looplab.agent.validate import validate_spec
from looplab.analysis import graphs
from looplab.analysis.baseline import random_baseline
from looplab.analysis.metrics import session_metrics, write_session_metrics, write_trial_metrics
from looplab.analysis.report import write_report
from looplab.env.make import env_kwargs
from looplab.errors import LoopLabError
from looplab.runfolder import RunPaths, alive, data_dir, open_run, read_status

log = logging.getLogger("looplab")


# ---- report / analyze -----------------------------------------------------------------------------
def report(run_dir: str | Path) -> Path:
    return write_report(open_run(run_dir))


def analyze(run_dir: str | Path) -> Path:
    """Recompute every session and trial metric and graph of a stopped run from its files; then the report."""
    paths = open_run(run_dir)
    status = read_status(paths.root)
    if status.get("status") == "running" and alive(status.get("pid")):
        raise LoopLabError(f"{run_dir}: the run is still running (pid {status['pid']}); analyze it once it stops")
    trials = graphs.trial_indices(paths)
    if not trials:
        raise LoopLabError(f"{run_dir}: no session dataframe in info/: nothing to analyze")
    for t in trials:
        baseline = _baseline(paths, t)
        metrics = analyze_trial(paths, t, baseline) or {}
        analyze_trial(paths, t, baseline, "eval")
        log.info("trial %s: total_reward_ma %s, strength %s", paths.prename(t), metrics.get("total_reward_ma"),
                 metrics.get("strength"))
    if len(trials) > 1:
        graphs.multi_trial_graphs(paths.root, paths.name, {f"t{t}": graphs.trial_session_dfs(paths, t) for t in trials},
                                  lib_dir=graphs.library_dir(paths))
    return write_report(paths)


def analyze_trial(paths: RunPaths, trial: int, baseline: float, kind: str = "train", sessions: bool = True) -> dict | None:
    """Metrics and graphs of one kind (train / eval) of a trial from its session dataframes: the sessions' files
    too when `sessions`; returns the trial metrics (None when no session wrote a dataframe of that kind)."""
    indices = graphs.session_indices(paths, trial, kind)
    if not indices:
        return None
    dfs, scalars = [], []
    for s in indices:
        df = graphs.read_session_df(paths.session_df(trial, s, kind))
        dfs.append(df)
        if sessions:
            scalars.append(write_session_metrics(paths, trial, s, df, baseline, kind))
            graphs.session_graphs(paths, trial, s, kind)
        else:
            scalars.append(session_metrics(df, baseline)["scalar"])
    metrics = write_trial_metrics(paths, trial, dfs, scalars, baseline, kind)
    graphs.trial_graphs(paths, trial, len(dfs), kind=kind, random_baseline=baseline)
    return metrics


def write_trial_results(paths: RunPaths, trial: int, num_sessions: int, scalars: list[dict], baseline: float) -> dict:
    """A trial's metrics from its sessions that finished (a non-empty scalar each), its graphs, and its
    evaluation metrics where the spec evaluates; returns the trial metrics."""
    done = [s for s in range(num_sessions) if scalars[s]]
    dfs = [pd.read_csv(paths.session_df(trial, s)) for s in done]
    metrics = write_trial_metrics(paths, trial, dfs, [scalars[s] for s in done], baseline)
    graphs.trial_graphs(paths, trial, num_sessions)
    analyze_trial(paths, trial, baseline, "eval", sessions=False)
    return metrics


def _baseline(paths: RunPaths, trial: int) -> float:
    """The random baseline saved with the trial's metrics, else measured (and cached) for the saved spec's env."""
    saved = graphs.saved_baseline(paths, trial)
    if saved is not None:
        return saved
    for f in (paths.spec(trial), paths.spec()):
        if f.exists():
            spec = validate_spec(io.read_json(f), str(f), paths.name, check_env=False)
            return random_baseline(spec.env.name, env_kwargs(spec.env))
    raise LoopLabError(f"{paths.root}: no saved spec to find the env's random baseline")


# ---- plot -----------------------------------------------------------------------------------------
def plot(run_dirs: list[str], title: str | None = None, out: str | None = None) -> list[Path]:
    """One comparison graph of several runs' trial curves (mean +-1 std), PNG and HTML."""
    if not run_dirs:
        raise LoopLabError("plot: give run folders with -f RUN1,RUN2,...")
    trials = graphs.runs_trials(run_dirs)
    title = title or " vs ".join(trials)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", title).strip("_")[:80] or "comparison"
    out_dir = Path(out) if out else data_dir() / "plots"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LoopLabError(f"cannot create {out_dir}: {e.strerror}") from None
    # the default plots/ folder sits in the data folder, beside the runs' plotly.js
    written = graphs.multi_trial_graphs(out_dir, slug, trials, title=title, lib_dir=None if out else out_dir.parent)
    if not written:
        raise LoopLabError(f"plot: the comparison graph could not be drawn (see the log above): {title}")
    return written
