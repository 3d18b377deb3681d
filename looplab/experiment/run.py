"""Resolve a spec for running (seed, git SHA, versions, command line) and run it in a mode."""

from __future__ import annotations

import copy
import json
import logging
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from looplab import io
from looplab.agent.validate import validate_spec
from looplab.analysis import report as analysis_report
from looplab.errors import LoopLabError
from looplab.experiment.cluster import connect
from looplab.experiment.logs import setup_logging
from looplab.experiment.procs import warm_up
from looplab.experiment.resources import check_memory
from looplab.experiment.seeds import root_seed, session_seed
from looplab.experiment.stop import STOP, Interrupted, install_stop_handlers, restore_default_handlers
from looplab.experiment.trial import Trial
from looplab.runfolder import RunPaths, data_dir
from looplab.spec import Spec, load_spec, parse_set, parse_vars

log = logging.getLogger("looplab")
SECRET_RE = re.compile(r"(token|secret|password|passwd|api_?key|credential)", re.I)
MODES = ("dev", "train", "search", "enjoy")


def git_info() -> tuple[str, bool | None]:
    """SHA and dirty flag of the LoopLab code that runs (not of the user's working folder)."""
    src = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown", None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in ("looplab", "torch", "gymnasium", "numpy", "pandas", "ale-py", "mujoco", "ray", "optuna"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def machine() -> dict[str, str | None]:
    """The machine type a run ran on: exact reproduction is promised on the same one."""
    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = None
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except (ImportError, RuntimeError):
        pass
    return {"system": platform.system(), "arch": platform.machine(), "cpu": cpu, "gpu": gpu}


def redacted_command(argv: list[str]) -> str:
    """The command line with values of secret-looking keys hidden."""
    out = []
    for arg in argv:
        key, sep, _ = arg.partition("=")
        out.append(f"{key}=***" if sep and SECRET_RE.search(key) else arg)
    return " ".join(["looplab", *out[1:]]) if out else "looplab"


def scrub(obj: Any) -> Any:
    """Drop secret-looking keys from a spec before it is saved."""
    if isinstance(obj, dict):
        return {k: ("***" if isinstance(k, str) and SECRET_RE.search(k) else scrub(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub(v) for v in obj]
    return obj


def prepare(spec_file: str, spec_name: str, set_vars: list[str] | None, overrides: list[str] | None,
            check_env: bool = True) -> tuple[dict[str, Any], Spec, str]:
    """Load, substitute, override and validate; returns (spec dict, Spec, file). Writes nothing."""
    variables = parse_vars(set_vars)
    sets = parse_set(overrides)
    try:
        raw, file = load_spec(spec_file, spec_name, variables, sets)
    except LoopLabError as e:
        raise (e.located(spec_file, spec_name) if hasattr(e, "located") else e) from None
    spec = validate_spec(raw, file, spec_name, check_env=check_env)
    return raw, spec, file


def resolve_meta(raw: dict[str, Any], spec: Spec, num_sessions: int, trial: int = 0,
                 seeds: list[int] | None = None) -> dict:
    """The spec as it will be saved: a chosen seed, git SHA, versions, machine, session seeds, command line.

    `seeds`: the sessions' seeds when given (a reproduction), else derived from the root seed."""
    out = copy.deepcopy(raw)
    meta = out.setdefault("meta", {})
    seed = root_seed(spec.meta.random_seed)
    spec.meta.random_seed = seed
    sha, dirty = git_info()
    meta.update({
        "random_seed": seed,
        "git_sha": sha,
        "git_dirty": dirty,
        "session_seeds": list(seeds) if seeds is not None else [session_seed(seed, trial, s)
                                                                for s in range(num_sessions)],
        "command": redacted_command(sys.argv),
        "versions": versions(),
        "machine": machine(),
    })
    return scrub(out)


def write_status(paths: RunPaths, **fields: Any) -> None:
    path = paths.status
    try:
        status = io.read_json(path)
    except (OSError, ValueError):
        status = {}
    status.update(fields)
    io.write_json(path, status)


def run_trial(raw: dict[str, Any], spec: Spec, file: str, mode: str, data: str | None, quiet: bool,
              seeds: list[int] | None = None, force: bool = False,
              ray_address: str | None = None) -> tuple[RunPaths, dict]:
    """dev / train: one trial in a new run folder (with the given session seeds, if any; its sessions on the
    Ray cluster at `ray_address`, if given)."""
    # before the run folder: a cluster that does not answer or cannot hold a session makes none
    cluster = connect(ray_address, spec, file) if ray_address else None
    paths, trial = start_trial(raw, spec, file, mode, data, quiet, seeds, force, local=cluster is None)
    trial.cluster = cluster
    if ray_address:
        write_status(paths, ray_address=ray_address)
    return paths, execute(paths, trial)


def start_trial(raw: dict[str, Any], spec: Spec, file: str, mode: str, data: str | None, quiet: bool,
                seeds: list[int] | None = None, force: bool = False, local: bool = True) -> tuple[RunPaths, Any]:
    """A new run folder with the resolved spec and status saved, and the Trial that will run in it
    (refused before anything is made if it cannot fit in memory, unless `force`). `local`: its sessions
    run in processes of this machine (not on a Ray cluster)."""
    num_sessions = 1 if mode == "dev" else spec.meta.max_session
    if seeds is None and spec.meta.session_seeds is not None:  # the spec's own (a saved spec's, say)
        seeds = spec.meta.session_seeds[:num_sessions]
    if local and num_sessions > 1:
        warm_up()  # the session processes' server imports LoopLab while this one makes the run folder
    memory = check_memory(spec, mode, file, force)
    resolved = resolve_meta(raw, spec, num_sessions, seeds=seeds)
    paths = RunPaths.create(data_dir(data), spec.name)
    resolved["meta"]["experiment_ts"] = paths.ts
    setup_logging(str(paths.log_file()), console=not quiet and mode == "dev")
    io.write_json(paths.spec(), resolved)
    io.write_json(paths.spec(0), {**resolved, "meta": {**resolved["meta"], "trial": 0}})
    write_status(paths, status="running", mode=mode, spec_file=file, spec_name=spec.name,
                 env=spec.env.name, algorithm=spec.algorithm.name, started=time.strftime("%Y-%m-%d %H:%M:%S"),
                 max_frame=spec.env.max_frame, pid=_pid(), memory_estimate=memory.as_dict())
    log.info("memory: %s", memory.describe())
    spec_dict = json.loads(json.dumps(resolved))
    return paths, Trial(spec, spec_dict, file, paths, 0, mode, quiet, seeds=seeds)


def execute(paths: RunPaths, trial: Any) -> dict:
    """Run a trial; SIGINT/SIGTERM stop it cleanly (final checkpoints, analysis, report, status)."""
    t0 = time.time()
    install_stop_handlers()
    try:
        try:
            metrics = trial.run()
        except Exception as e:
            if STOP.signum:  # an error the stop itself caused (a process it ended): the run was interrupted
                raise Interrupted(STOP.signum) from e
            raise
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        try:
            write_status(paths, status=status, error=str(e).splitlines()[0] if str(e) else type(e).__name__,
                         wall_time=time.time() - t0)
        except io.WriteError as full:  # a full disk: the error that stopped the run is what to report
            log.warning("%s", full)
        if status == "interrupted":
            write_report(paths)
        raise
    finally:
        restore_default_handlers()
    write_status(paths, status="finished", finished=time.strftime("%Y-%m-%d %H:%M:%S"),
                 wall_time=time.time() - t0, total_reward_ma=metrics.get("total_reward_ma"),
                 strength=metrics.get("strength"), frame=metrics.get("frame"))
    write_report(paths)
    return metrics


def write_report(paths: RunPaths) -> None:
    """The run report, where the analysis package provides one; a failure here never hides the stop."""
    try:
        analysis_report.write_report(str(paths.root))
    except Exception as e:
        log.warning("report of %s failed: %s", paths.root, e)


def _pid() -> int:
    import os

    return os.getpid()
