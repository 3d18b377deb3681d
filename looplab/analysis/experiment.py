"""The results of a search: the experiment dataframe (one row per trial, best first), the best trial's spec
and the experiment graphs, from the trials' files in the run folder."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd

from looplab import io
from looplab.agent.validate import validate_spec
from looplab.analysis import graphs
from looplab.analysis.baseline import random_baseline
from looplab.analysis.commands import write_trial_results
from looplab.analysis.metrics import METRICS_COLS, session_metrics
from looplab.env.make import env_kwargs
from looplab.runfolder import RunPaths
from looplab.spec.search import TRIAL_KEY, SearchSpace

log = logging.getLogger("looplab")
# the meta keys LoopLab writes into a resolved spec; the best spec leaves them out
RUN_META_KEYS = ("session_seeds", "trial", "experiment", "experiment_ts", "command", "versions", "git_sha",
                 "git_dirty", "resume")


def analyze_experiment(paths: RunPaths, space: SearchSpace, results: list[dict]) -> pd.DataFrame:
    """The experiment dataframe (best trial first), the best trial's spec and the experiment graphs.

    `results`: per Ray trial, its `config` (with the trial index under TRIAL_KEY) and its `error` (or None).
    """
    rows = []
    for r in sorted(results, key=lambda r: r["config"].get(TRIAL_KEY, -1)):
        index = r["config"].get(TRIAL_KEY)
        if index is None:
            continue
        rows.append(_trial_row(paths, int(index), r, space))
    searched = space.paths
    df = pd.DataFrame(rows)
    for col in ["trial", *searched, *METRICS_COLS, "status", "error"]:
        if col not in df.columns:
            df[col] = None
    extras = [c for c in df.columns if c not in ("trial", *searched, *METRICS_COLS, "status", "error")]
    df = df[["trial", *searched, *METRICS_COLS, *extras, "status", "error"]]
    df["strength"] = pd.to_numeric(df["strength"], errors="coerce")
    df = df.sort_values(["strength", "trial"], ascending=[False, True], na_position="last").reset_index(drop=True)
    io.write_csv(paths.experiment_df(), _csv_ready(df))
    ranked = ranked_trials(df)
    if ranked:
        write_best_spec(paths, ranked[0])
        log.info("best trial: %s (strength %.4g); spec %s", paths.prename(ranked[0]),
                 df.loc[df["trial"] == ranked[0], "strength"].iat[0], paths.best_spec())
    else:
        log.error("no trial finished: no best spec")
    _graphs(paths, df, searched)
    return df


def _csv_ready(df: pd.DataFrame) -> pd.DataFrame:
    """Lists and dicts (e.g. searched layer sizes) as JSON in the CSV."""
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, (list, dict))).any():
            out[col] = out[col].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
    return out


def ranked_trials(df: pd.DataFrame) -> list[int]:
    """Trials best first: finished ones by strength, then stopped ones."""
    order = []
    for status in ("finished", "stopped"):
        sub = df[(df["status"] == status) & df["strength"].notna()]
        order += [int(t) for t in sub["trial"]]
    return order


def _trial_row(paths: RunPaths, index: int, result: dict, space: SearchSpace) -> dict:
    try:
        status = io.read_json(paths.trial_status(index))
    except (OSError, ValueError):
        status = {}
    state = status.get("status", "incomplete")
    if state == "running":  # its worker ended without a word (a node lost, the experiment interrupted)
        state = "incomplete"
    error = status.get("error")
    if result["error"] is not None:
        state = "failed"
        error = error or str(result["error"]).strip().splitlines()[-1]
    metrics_path = paths.trial_metrics(index)
    if state == "stopped" and not metrics_path.exists():
        _analyze_partial(paths, index)
    try:
        metrics = io.read_json(metrics_path) if state != "failed" else {}
    except (OSError, ValueError):
        metrics = {}
    row = {"trial": index, **{p: result["config"].get(p) for p in space.paths}, **metrics,
           "status": state, "error": error}
    if state == "stopped":
        row["frame"] = status.get("frame", row.get("frame"))
    return row


def _analyze_partial(paths: RunPaths, index: int) -> None:
    """Trial metrics and graphs of a trial stopped early, from the session dataframes it left."""
    try:
        spec_dict = io.read_json(paths.spec(index))
        spec = validate_spec(spec_dict, check_env=False)
        baseline = random_baseline(spec.env.name, env_kwargs(spec.env))
        num_sessions = spec.meta.max_session  # a search runs its trials in train mode
        scalars = []
        for s in range(num_sessions):
            p = paths.session_df(index, s)
            scalar = session_metrics(pd.read_csv(p), baseline)["scalar"] if p.exists() else {}
            # metrics undefined on a short run are None in JSON; the trial means want NaN
            scalars.append({k: math.nan if v is None else v for k, v in scalar.items()})
        if any(scalars):
            write_trial_results(paths, index, num_sessions, scalars, baseline)
    except Exception as e:  # partial data: say what is missing, keep the experiment's results
        log.error("metrics of stopped trial %s could not be computed: %s", paths.prename(index), e)


def write_best_spec(paths: RunPaths, index: int) -> Path:
    """`{n}_best_spec.json`: the best trial's spec without `search` or run records, as a spec file."""
    spec = io.read_json(paths.spec(index))
    spec.pop("search", None)
    name = spec.pop("name", paths.name)
    for key in RUN_META_KEYS:
        spec.get("meta", {}).pop(key, None)
    out = paths.best_spec()
    io.write_json(out, {name: spec})
    return out


def _graphs(paths: RunPaths, df: pd.DataFrame, searched: list[str]) -> None:
    done = df[df["strength"].notna()]
    if not done.empty:
        graphs.experiment_graphs(paths.root, paths.name, done, searched, lib_dir=graphs.library_dir(paths))
    trials = {f"t{int(t)}": dfs for t in done["trial"] if (dfs := graphs.trial_session_dfs(paths, int(t)))}
    if trials:
        graphs.multi_trial_graphs(paths.root, paths.name, trials, lib_dir=graphs.library_dir(paths))
