"""`train@RUN_DIR` / `train@latest`: continue every session of a run from its last checkpoint.

The run continues in its own folder with the spec it saved (seed included), not a fresh one, so a
run killed at any moment and resumed ends with the same session dataframes as one never stopped.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from looplab import io
from looplab.agent.validate import validate_spec
from looplab.errors import LoopLabError
from looplab.experiment.cluster import connect
from looplab.experiment.hogwild import refuse_resume
from looplab.experiment.logs import setup_logging
from looplab.experiment.resources import check_memory
from looplab.experiment.run import execute, git_info, write_status
from looplab.experiment.session import finished_earlier
from looplab.experiment.trial import Trial
from looplab.runfolder import RunPaths, data_dir, latest_run, run_name
from looplab.spec.schema import Spec

log = logging.getLogger("looplab")


def find_run(target: str, spec_name: str, data: str | None) -> tuple[Path, str]:
    root = latest_run(data_dir(data), spec_name) if target == "latest" else Path(target)
    if not root.is_dir():
        raise LoopLabError(f"run folder not found: {target}")
    name = run_name(root)
    spec_path = RunPaths(root, name).spec()
    if not spec_path.is_file():
        raise LoopLabError(f"{root} has no saved spec {spec_path.name}: not a LoopLab run folder")
    if name != spec_name and not name.startswith(f"{spec_name}_"):
        raise LoopLabError(f"run folder {root} is a run of spec '{name}', not '{spec_name}'")
    return root, name


def load_run(root: Path, name: str) -> tuple[dict[str, Any], Spec, dict]:
    """The saved resolved spec (raw dict and validated), and run.json."""
    spec_path = RunPaths(root, name).spec()
    try:
        raw = io.read_json(spec_path)
    except (OSError, ValueError) as e:
        raise LoopLabError(f"cannot read {spec_path}: {e}") from None
    spec = validate_spec(raw, str(spec_path), name, check_env=False)
    try:
        status = io.read_json(RunPaths(root, name).status)
    except (OSError, ValueError):
        status = {}
    return raw, spec, status


def code_shas(raw: dict) -> tuple[str | None, str]:
    """The git SHA that made a run (from its saved spec `raw`) and the running code's."""
    return (raw.get("meta") or {}).get("git_sha"), git_info()[0]


def check_same_code(root: Path, raw: dict) -> None:
    """Resuming continues a run exactly only on the code that made it: refuse another git SHA."""
    saved, current = code_shas(raw)
    if not saved or "unknown" in (saved, current):
        log.warning("train@%s: cannot tell whether the code is the one that made the run (git SHA %s, now %s)",
                    root, saved or "not saved", current)
        return
    if saved != current:
        raise LoopLabError(f"train@{root}: the run was made by LoopLab at git {saved[:12]}, this is {current[:12]}; "
                           f"resuming on other code would not continue it exactly. Get its code with "
                           f"`git checkout {saved}` and resume again")


def check_checkpoints(paths: RunPaths, spec: Spec, num_sessions: int) -> None:
    """A session past its first log checkpoint has a resume checkpoint, unless the run was pulled without one;
    a session that ended needs none."""
    for s in range(num_sessions):
        df, ckpt = paths.session_df(0, s), paths.checkpoint(0, s)
        if finished_earlier(spec, paths, 0, s) is not None:
            continue
        # the checkpoint is written after each row: a second row means there was one
        if df.is_file() and not ckpt.is_file() and len(df.read_text().splitlines()) > 2:
            raise LoopLabError(f"train@{paths.root}: session {s} has logged rows but no resume checkpoint {ckpt.name} "
                               f"(optimizer states are left out of a push unless --with-optim)")


def run_resume(spec_file: str, spec_name: str, target: str, data: str | None, quiet: bool,
               force: bool = False, ray_address: str | None = None) -> tuple[RunPaths, dict]:
    """Continue the run `target` (a folder or 'latest') of `spec_name` in place (its unfinished sessions on the
    Ray cluster at `ray_address`, if given); returns its folder and metrics."""
    paths, trial = resume_trial(spec_file, spec_name, target, data, quiet, force, ray_address)
    return paths, execute(paths, trial)


def resume_trial(spec_file: str, spec_name: str, target: str, data: str | None, quiet: bool,
                 force: bool = False, ray_address: str | None = None) -> tuple[RunPaths, object]:
    """The run folder `target` marked running again, and the Trial that continues it from its checkpoints
    (refused if it cannot fit in memory, unless `force`)."""
    root, name = find_run(target, spec_name, data)
    raw, spec, status = load_run(root, name)
    mode = status.get("mode", "train")
    if mode not in ("dev", "train"):
        raise LoopLabError(f"{root} is a '{mode}' run; only dev and train runs resume")
    refuse_resume(spec, root)
    paths = RunPaths(root, name)
    memory = check_memory(spec, mode, str(paths.spec()), force)
    check_same_code(root, raw)
    check_checkpoints(paths, spec, 1 if mode == "dev" else spec.meta.max_session)
    cluster = connect(ray_address, spec, str(paths.spec())) if ray_address else None
    setup_logging(str(paths.log_file()), console=not quiet and mode == "dev")
    log.info("resuming %s (status %s) with its saved spec %s (seed %s); %s is not re-read",
             root, status.get("status", "unknown"), paths.spec().name, spec.meta.random_seed, spec_file)
    write_status(paths, status="running", resumed=int(status.get("resumed", 0)) + 1,
                 resumed_at=time.strftime("%Y-%m-%d %H:%M:%S"), pid=os.getpid(), error=None, ray_address=ray_address,
                 memory_estimate=memory.as_dict())
    seeds = (raw.get("meta") or {}).get("session_seeds")  # the seeds it ran with (a reproduction may set them)
    trial = Trial(spec, raw, str(paths.spec()), paths, 0, mode, quiet, resume=True, seeds=seeds)
    trial.cluster = cluster
    return paths, trial

