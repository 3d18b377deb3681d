"""Mode 'search': an Experiment is a Ray Tune run whose every trial is a LoopLab Trial.

Levels: the experiment (this module, in the `looplab` process) checks the search settings, asks Ray Tune
for `max_trial` trials per grid point (configurations from `searcher.py`), and analyzes the results
(`looplab.analysis.experiment`). Each Ray trial (`ray_trial.py`, in a Ray worker) writes the trial spec
and starts the LoopLab Trial `t{i}` in a child process of its own process group (`trial_process.py`), in
the same run folder, and reports its progress from the sessions' dataframes. `ray_cluster.py` starts a
local Ray or joins a cluster.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import pandas as pd

from looplab import io
from looplab.agent.validate import validate_spec
from looplab.analysis.experiment import analyze_experiment, ranked_trials
from looplab.analysis.report import write_report
from looplab.errors import LoopLabError, SpecError, did_you_mean
from looplab.experiment.cluster import require_answer
from looplab.experiment.logs import setup_logging
from looplab.experiment.ray_cluster import check_capacity, local_resources, looplab_env, start_ray
from looplab.experiment.ray_trial import METRIC, MODE, TrialContext, ray_trial, trial_dirname
from looplab.experiment.run import prepare, resolve_meta, write_status
from looplab.experiment.searcher import make_searcher
from looplab.experiment.stop import STOP, raise_if_stopped, raise_interrupted
from looplab.runfolder import STATUS, TUNE_DIR, RunPaths, data_dir
from looplab.spec.schema import Spec
from looplab.spec.search import TRIAL_KEY, SearchSpace, check_search

log = logging.getLogger("looplab")
ASHA_KEYS = {"grace_period": int, "reduction_factor": float, "brackets": int, "stop_last_trials": bool,
             "max_t": int}
RESOURCE_KEYS = ("cpu", "gpu")


# ---- validation (before Ray starts) -----------------------------------------------------------------
def check_experiment(raw: dict[str, Any], spec: Spec, file: str) -> tuple[SearchSpace, dict[str, float], dict | None]:
    """The search space, per-trial resources and ASHA kwargs, or a SpecError naming the key."""
    space = check_search(raw, validate_spec, file, spec.name)
    meta = spec.meta

    def bad(msg: str, path: str) -> SpecError:
        return SpecError(msg, file=file, spec=spec.name, path=path)

    resources = {"cpu": 1.0, "gpu": 0.0}
    for key, value in (meta.search_resources or {}).items():
        if key not in RESOURCE_KEYS:
            raise bad(f"unknown resource; use {' and '.join(RESOURCE_KEYS)}", f"meta.search_resources.{key}")
        if not math.isfinite(value) or value < 0 or (key == "cpu" and value == 0):
            raise bad(f"must be {'> 0' if key == 'cpu' else '>= 0'}, got {value}", f"meta.search_resources.{key}")
        resources[key] = float(value)
    asha = None
    if meta.search_scheduler is not None:
        asha = {}
        for key, value in meta.search_scheduler.items():
            kind = ASHA_KEYS.get(key)
            where = f"meta.search_scheduler.{key}"
            if kind is None:
                raise bad(f"unknown ASHA setting{did_you_mean(key, ASHA_KEYS)}; known: {', '.join(ASHA_KEYS)}",
                          where)
            ok = isinstance(value, bool) if kind is bool else (
                isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
                and (kind is float or float(value).is_integer()))
            if not ok:
                raise bad(f"must be a {'boolean' if kind is bool else 'positive number'}, got {value!r}", where)
            asha[key] = kind(value)
        max_t = asha.setdefault("max_t", spec.env.max_frame)
        if asha.get("grace_period", 1) > max_t:
            raise bad(f"grace_period ({asha['grace_period']} frames) exceeds max_t ({max_t} frames)",
                      "meta.search_scheduler.grace_period")
        if asha.get("reduction_factor", 4) <= 1:
            raise bad("must be > 1", "meta.search_scheduler.reduction_factor")
    return space, resources, asha


# ---- the experiment ----------------------------------------------------------------------------------
def run_search(spec_file: str, spec_name: str, set_vars: list[str] | None, overrides: list[str] | None,
               data: str | None, quiet: bool, resume: str | None = None, ray_address: str | None = None,
               keep: int = 3) -> tuple[RunPaths, pd.DataFrame]:
    """`looplab run SPEC_FILE SPEC_NAME search` (or `search@RUN_DIR` to resume)."""
    if keep < -1:
        raise LoopLabError(f"--keep must be -1 (keep all) or >= 0, got {keep}")
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    if address:  # before the run folder: a cluster that does not answer makes none
        require_answer(address, "--ray-address" if ray_address else "RAY_ADDRESS")
    if resume is None:
        raw, spec, file = prepare(spec_file, spec_name, set_vars, overrides)
        space, resources, asha = check_experiment(raw, spec, file)
        if not address:
            check_capacity(resources, [local_resources(spec)], "local Ray")
        resolved = resolve_meta(raw, spec, spec.meta.max_session)
        paths = RunPaths.create(data_dir(data), spec.name)
        resolved["meta"]["experiment_ts"] = paths.ts
        io.write_json(paths.spec(), resolved)
    else:
        paths, resolved, file = open_search(resume)
        spec = validate_spec(resolved, file, paths.name)
        space, resources, asha = check_experiment(resolved, spec, file)
    paths = RunPaths(paths.root.resolve(), paths.name)
    setup_logging(str(paths.log_file()), console=not quiet)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    num_grid = len(space.grid_points())
    num_trials = spec.meta.max_trial * num_grid
    write_status(paths, status="running", mode="search", name=paths.name, spec_file=file, spec_name=spec.name,
                 env=spec.env.name, algorithm=spec.algorithm.name, started=time.strftime("%Y-%m-%d %H:%M:%S"),
                 max_frame=spec.env.max_frame, pid=os.getpid(), max_trial=num_trials, ray_address=address)
    log.info("experiment %s: %d trial(s) x %d session(s), %s; run folder %s", paths.name, num_trials,
             spec.meta.max_session, "ASHA" if asha else "no early stopping", paths.root)
    env = looplab_env()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables; LoopLab logs a line per trial
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Tune's own SIGINT handler ends the trials and returns as if they had finished; LoopLab wants the
    # experiment marked interrupted and resumable instead, for SIGINT and SIGTERM alike
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    # the handler raises in whatever the main thread runs; library code there can swallow the exception (a
    # search interrupted just after a trial ended once ran on to its last trial), so Tune's loop also reads
    # the signal it records after every step (_progress_callback)
    STOP.signum = 0
    previous = {sig: signal.signal(sig, raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    t0 = time.time()
    status = "failed"
    try:
        import ray

        local = local_resources(spec)
        ray_s = start_ray(address, int(local["CPU"]), int(local["GPU"]), env)
        log.info("Ray %s in %.1f s", f"cluster {address}" if address else f"local ({local['CPU']:g} CPU)", ray_s)
        write_status(paths, ray_start_s=round(ray_s, 2))
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        check_capacity(resources, nodes, f"Ray cluster at {address}" if address else "local Ray")
        ctx = TrialContext(resolved, file, str(paths.root), paths.name, spec.meta.max_session, env)
        results = _fit(paths, space, spec, resources, asha, ctx, num_trials, quiet, restore=resume is not None)
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        log.error("experiment interrupted; resume with: looplab run %s %s search@%s", spec_file, spec_name,
                  paths.root)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            import ray

            ray.shutdown()
        finally:
            write_status(paths, status=status, wall_time=round(time.time() - t0, 2),
                         finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    df = analyze_experiment(paths, space, results)
    prune_models(paths, ranked_trials(df), [int(t) for t in df["trial"]], keep)
    _report(paths)
    finished = df[df["status"] == "finished"]
    write_status(paths, trials_finished=len(finished), trials_failed=int((df["status"] == "failed").sum()),
                 trials_stopped=int((df["status"] == "stopped").sum()),
                 strength=_first(finished, "strength"), total_reward_ma=_first(finished, "total_reward_ma"))
    print_experiment(paths, df, space.paths, quiet)
    return paths, df


def print_experiment(paths: RunPaths, df: pd.DataFrame, searched: list[str], quiet: bool) -> None:
    """The best trials as a table (unless quiet), then where the results are."""
    if not quiet:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"experiment {paths.name}: {len(df)} trial(s), best first")
        cols = ["trial", *searched, "total_reward_ma", "strength", "status"]
        for c in cols:
            table.add_column(c.rsplit(".", 1)[-1] if c in searched else c, justify="right")
        for _, row in df.head(10).iterrows():
            table.add_row(*["-" if row[c] is None or (isinstance(row[c], float) and math.isnan(row[c]))
                            else f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in cols])
        Console().print(table)
    best = paths.best_spec()
    print(f"run folder: {paths.root}")
    if best.exists():
        print(f"best spec: {best}")


def _first(df: pd.DataFrame, col: str) -> float | None:
    if df.empty or col not in df.columns or pd.isna(df[col].iat[0]):
        return None
    return float(df[col].iat[0])


def _fit(paths: RunPaths, space: SearchSpace, spec: Spec, resources: dict, asha: dict | None, ctx: TrialContext,
         num_trials: int, quiet: bool, restore: bool) -> list[dict]:
    """Run (or restore) the Tune experiment; returns per trial its config, last result and error.

    Trials reuse Ray's worker processes (`reuse_actors`): a worker that has run one trial runs the next with
    Ray and the package already imported, instead of a new worker starting for every trial."""
    from functools import partial

    from ray import tune
    from ray.tune.schedulers import AsyncHyperBandScheduler

    trainable = tune.with_resources(partial(ray_trial, ctx=ctx), {"cpu": resources["cpu"], "gpu": resources["gpu"]})
    storage = paths.tune_dir
    if restore:
        tuner = tune.Tuner.restore(str(storage), trainable=trainable, resume_unfinished=True, resume_errored=False,
                                   restart_errored=False)
    else:
        scheduler = (AsyncHyperBandScheduler(time_attr="frame", metric=METRIC, mode=MODE, **asha)
                     if asha else None)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=make_searcher(space, spec.meta.random_seed), scheduler=scheduler,
                                        num_samples=num_trials, trial_dirname_creator=trial_dirname,
                                        trial_name_creator=trial_dirname, reuse_actors=True),
            run_config=tune.RunConfig(name=TUNE_DIR, storage_path=str(paths.root), verbose=0,
                                      callbacks=[_progress_callback(paths)]),
        )
    grid = tuner.fit()
    if grid.num_terminated + grid.num_errors < num_trials:
        raise KeyboardInterrupt(f"{grid.num_terminated + grid.num_errors} of {num_trials} trials ended")
    out = []
    for i in range(len(grid)):
        r = grid[i]
        out.append({"config": r.config or {}, "metrics": r.metrics or {}, "error": r.error})
    return out


def _progress_callback(paths: RunPaths) -> Any:
    from ray.tune import Callback

    class Progress(Callback):
        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            raise_if_stopped()  # a module function: Tune pickles its callbacks with the experiment

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            r = trial.last_result or {}
            log.info("trial %s done at frame %s: total_reward_ma %.4g", paths.prename(trial.config.get(TRIAL_KEY)),
                     r.get("frame"), r.get(METRIC, float("nan")))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            log.info("trial %s failed", paths.prename(trial.config.get(TRIAL_KEY)))

    return Progress()


def open_search(run_dir: str) -> tuple[RunPaths, dict, str]:
    """A search run folder to resume: its paths, saved experiment spec and spec file."""
    root = Path(run_dir)
    if not RunPaths(root, "").tune_dir.is_dir():
        raise LoopLabError(f"search@{run_dir}: not a search run folder (no {TUNE_DIR}/ in it)")
    try:
        status = io.read_json(root / STATUS)
        name = status["name"]
        spec = io.read_json(RunPaths(root, name).spec())
    except (OSError, ValueError, KeyError) as e:
        raise LoopLabError(f"search@{run_dir}: cannot read the experiment's {STATUS} or spec: {e}") from None
    return RunPaths(root, name), spec, status.get("spec_file", str(RunPaths(root, name).spec()))


# ---- after the trials --------------------------------------------------------------------------------
def _report(paths: RunPaths) -> None:
    try:
        write_report(paths.root)
    except Exception as e:  # the experiment's results stand without the page
        log.error("report of %s failed: %s", paths.root, e)


def prune_models(paths: RunPaths, ranked: list[int], trials: list[int], keep: int) -> list[Path]:
    """Remove the model files of all trials but the best `keep` (-1 keeps all)."""
    if keep < 0:
        return []
    kept = set(ranked[:keep])
    removed = []
    for t in trials:
        if t in kept:
            continue
        for p in paths.model_dir.glob(f"{paths.prename(t)}_*"):  # every file of the trial's sessions
            p.unlink(missing_ok=True)
            removed.append(p)
    if removed:
        log.info("removed %d model file(s) of %d trial(s) outside the best %d", len(removed),
                 len([t for t in trials if t not in kept]), keep)
    return removed
