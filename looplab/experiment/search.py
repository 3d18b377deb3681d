"""Mode 'search': an Experiment is a Ray Tune run whose every trial is a LoopLab Trial.

Levels: the experiment (this module, in the `looplab` process) asks Ray Tune for `max_trial` trials per
grid point; each Ray trial (a Ray worker) writes the trial spec `{n}_t{i}_spec.json` and starts the
LoopLab Trial `t{i}` in a child process of its own process group, in the same run folder. The Ray
trial reads the sessions' dataframes from disk while the Trial runs and reports, at each log
checkpoint, the mean over sessions of `total_reward_ma` (and of `total_reward`) at that frame. Reading
the files rather than hooking the session loop leaves Trial and Session untouched, keeps the Ray
worker out of the training processes' CPU time, and lets ASHA stop a trial by ending its process
group (sessions included) without help from the training code.

Configurations come from `LoopLabSearcher`: Optuna's TPE through Ray Tune's `OptunaSearch`, seeded from
`meta.random_seed`, one TPE per grid point, with trial indices assigned in suggestion order and carried
in the trial's config, so results pair with configurations by trial, never by position.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from looplab import io
from looplab.agent.validate import validate_spec
from looplab.analysis import graphs
from looplab.analysis.baseline import random_baseline
from looplab.analysis.metrics import METRICS_COLS, session_metrics
from looplab.analysis.report import write_report
from looplab.env.make import env_kwargs
from looplab.env.pool import die_with_parent
from looplab.errors import LoopLabError, SpecError, did_you_mean
from looplab.experiment.logs import setup_logging
from looplab.experiment.run import prepare, resolve_meta, write_status
from looplab.experiment.seeds import session_seed
from looplab.experiment.trial import Trial
from looplab.runfolder import STATUS, TUNE_DIR, RunPaths, data_dir
from looplab.spec.search import SearchSpace, apply_values, check_search

log = logging.getLogger("looplab")
METRIC, MODE = "total_reward_ma", "max"
TRIAL_KEY = "trial"  # the config key that carries the LoopLab trial index
ASHA_KEYS = {"grace_period": int, "reduction_factor": float, "brackets": int, "stop_last_trials": bool,
             "max_t": int}
RESOURCE_KEYS = ("cpu", "gpu")
POLL_S = 0.5
RUN_META_KEYS = ("session_seeds", "trial", "experiment", "experiment_ts", "command", "versions", "git_sha",
                 "git_dirty", "resume")


# ---- validation (before Ray starts) -----------------------------------------------------------------
def check_experiment(raw: dict, spec: Any, file: str) -> tuple[SearchSpace, dict[str, float], dict | None]:
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


# ---- the searcher -----------------------------------------------------------------------------------
def _searcher_class() -> type:
    from ray.tune.search import Searcher

    class LoopLabSearcher(Searcher):
        """TPE (Ray Tune's OptunaSearch, seeded) per grid point; assigns LoopLab trial indices."""

        def __init__(self, space: SearchSpace, seed: int):
            super().__init__(metric=METRIC, mode=MODE)
            from optuna.samplers import TPESampler
            from ray.tune.search.optuna import OptunaSearch

            self.space = space
            self.points = space.grid_points()
            dists = space.optuna_space()
            self.tpes = [OptunaSearch(space=dists, metric=METRIC, mode=MODE, sampler=TPESampler(seed=seed + g))
                         if dists else None for g in range(len(self.points))]
            self.count = 0
            self.owner: dict[str, int] = {}

        def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
            return True

        def suggest(self, trial_id: str) -> dict | None:
            k = self.count
            self.count += 1
            g = k % len(self.points)
            self.owner[trial_id] = g
            config = {TRIAL_KEY: k, **self.points[g]}
            tpe = self.tpes[g]
            if tpe is not None:
                config.update(self.space.decode(tpe.suggest(trial_id)))
            return config

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            tpe = self._tpe(trial_id)
            if tpe is not None and METRIC in result and _finite(result[METRIC]):
                tpe.on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            tpe = self._tpe(trial_id)
            if tpe is not None:
                ok = result is not None and _finite(result.get(METRIC))
                tpe.on_trial_complete(trial_id, result if ok else None, error=error or not ok)

        def _tpe(self, trial_id: str) -> Any:
            g = self.owner.get(trial_id)
            return None if g is None else self.tpes[g]

        def save(self, checkpoint_path: str) -> None:
            import pickle

            with open(checkpoint_path, "wb") as f:
                pickle.dump(self.__dict__, f)

        def restore(self, checkpoint_path: str) -> None:
            import pickle

            with open(checkpoint_path, "rb") as f:
                self.__dict__.update(pickle.load(f))

    return LoopLabSearcher


def make_searcher(space: SearchSpace, seed: int) -> Any:
    return _searcher_class()(space, seed)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---- one Ray trial (runs in a Ray worker) -------------------------------------------------------------
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
            [sys.executable, "-m", "looplab.experiment.search", "--trial", str(spec_path), ctx.file, ctx.root,
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
        final = {k: v for k, v in metrics.items() if _finite(v)}
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


def _trial_process(spec_path: str, file: str, root: str, name: str, index: int) -> int:
    """Child process: run LoopLab Trial t{index}; dies with its process group if its Ray worker dies."""
    parent = os.getppid()
    die_with_parent(parent)  # even when stopped (SIGSTOP), where the watchdog below cannot run

    def watchdog() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watchdog, daemon=True).start()
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


def trial_dirname(trial: Any) -> str:
    return f"t{trial.config.get(TRIAL_KEY)}_{trial.trial_id}"


# ---- Ray ---------------------------------------------------------------------------------------------
def start_ray(address: str | None, num_cpus: int, num_gpus: int, env: dict[str, str]) -> float:
    """Connect to a cluster (address) or start a local Ray; returns the seconds it took."""
    import ray

    t0 = time.time()
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
              "runtime_env": {"env_vars": env}}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, object_store_memory=128 * 1024**2,
                     **common)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise LoopLabError(f"cannot {'connect to Ray at ' + address if address else 'start a local Ray'}: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return time.time() - t0


def check_capacity(resources: dict[str, float], nodes: list[dict], where: str) -> None:
    """A trial that asks more than any one node has would wait forever in Ray: say so instead."""
    fits = any(n.get("CPU", 0) >= resources["cpu"] and n.get("GPU", 0) >= resources["gpu"] for n in nodes)
    if not fits:
        have = ", ".join(f"{n.get('CPU', 0):g} CPU/{n.get('GPU', 0):g} GPU" for n in nodes) or "no live node"
        raise LoopLabError(f"meta.search_resources asks {resources['cpu']:g} CPU and {resources['gpu']:g} GPU per "
                           f"trial but no node of the {where} has that ({have}); Ray would wait forever")


def local_resources(spec: Any) -> dict[str, float]:
    """What a local Ray gets: `meta.num_cpus` or every core, and every visible GPU."""
    import torch

    return {"CPU": float(spec.meta.num_cpus or os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def looplab_env() -> dict[str, str]:
    """LoopLab's environment variables, for Ray workers that a cluster started elsewhere."""
    return {k: v for k, v in os.environ.items() if k.startswith("LOOPLAB_") or k == "PYTHONHASHSEED"}


# ---- the experiment ----------------------------------------------------------------------------------
def run_search(spec_file: str, spec_name: str, set_vars: list[str] | None, overrides: list[str] | None,
               data: str | None, quiet: bool, resume: str | None = None, ray_address: str | None = None,
               keep: int = 3) -> tuple[RunPaths, pd.DataFrame]:
    """`looplab run SPEC_FILE SPEC_NAME search` (or `search@RUN_DIR` to resume)."""
    if keep < -1:
        raise LoopLabError(f"--keep must be -1 (keep all) or >= 0, got {keep}")
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
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
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
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
        signal.signal(signal.SIGTERM, previous_term)
        try:
            import ray

            ray.shutdown()
        finally:
            write_status(paths, status=status, wall_time=round(time.time() - t0, 2),
                         finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    df = analyze_experiment(paths, space, results, keep)
    finished = df[df["status"] == "finished"]
    write_status(paths, trials_finished=len(finished), trials_failed=int((df["status"] == "failed").sum()),
                 trials_stopped=int((df["status"] == "stopped").sum()),
                 strength=_first(finished, "strength"), total_reward_ma=_first(finished, "total_reward_ma"))
    print_experiment(paths, df, space.paths, quiet)
    return paths, df


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C; the command exits 128 + 15."""

    exit_code = 143


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise Terminated("SIGTERM")


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


def _fit(paths: RunPaths, space: SearchSpace, spec: Any, resources: dict, asha: dict | None, ctx: TrialContext,
         num_trials: int, quiet: bool, restore: bool) -> list[dict]:
    """Run (or restore) the Tune experiment; returns per trial its config, last result and error."""
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
                                        trial_name_creator=trial_dirname),
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


# ---- analysis ----------------------------------------------------------------------------------------
def analyze_experiment(paths: RunPaths, space: SearchSpace, results: list[dict], keep: int) -> pd.DataFrame:
    """The experiment dataframe, best spec, graphs and report; prunes the models of all but `keep` trials."""
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
    ranked = _ranked(df)
    if ranked:
        write_best_spec(paths, ranked[0])
        log.info("best trial: %s (strength %.4g); spec %s", paths.prename(ranked[0]),
                 df.loc[df["trial"] == ranked[0], "strength"].iat[0], paths.best_spec())
    else:
        log.error("no trial finished: no best spec")
    _graphs(paths, df, searched)
    prune_models(paths, ranked, [int(t) for t in df["trial"]], keep)
    _report(paths)
    return df


def _csv_ready(df: pd.DataFrame) -> pd.DataFrame:
    """Lists and dicts (e.g. searched layer sizes) as JSON in the CSV."""
    out = df.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, (list, dict))).any():
            out[col] = out[col].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
    return out


def _ranked(df: pd.DataFrame) -> list[int]:
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
        trial = Trial(spec, spec_dict, "", paths, index, "train", quiet=True)
        scalars = []
        for s in range(trial.num_sessions):
            p = paths.session_df(index, s)
            scalar = session_metrics(pd.read_csv(p), baseline)["scalar"] if p.exists() else {}
            # metrics undefined on a short run are None in JSON; the trial means want NaN
            scalars.append({k: math.nan if v is None else v for k, v in scalar.items()})
        if any(scalars):
            trial.analyze(scalars, baseline)
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
    exp, multi = graphs.experiment_graphs, graphs.multi_trial_graphs
    done = df[df["strength"].notna()]
    if not done.empty:
        exp(paths.root, paths.name, done, searched, lib_dir=graphs.library_dir(paths))
    trials = {f"t{int(t)}": dfs for t in done["trial"] if (dfs := graphs.trial_session_dfs(paths, int(t)))}
    if trials:
        multi(paths.root, paths.name, trials, lib_dir=graphs.library_dir(paths))


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


if __name__ == "__main__" and len(sys.argv) == 7 and sys.argv[1] == "--trial":
    sys.exit(_trial_process(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])))
