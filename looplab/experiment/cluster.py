"""A trial's sessions on a Ray cluster: `looplab run SPEC NAME train --ray-address ADDR`.

Each session is a Ray task asking for the CPUs its env steps on (`meta.env_workers`, default 1) and a
GPU where the net asks for one (`agent.net.gpu: true`, or `auto` on a cluster that has GPUs). The task
runs the session in a child process of its own (as a search trial does), which writes into the run
folder where its node sees it, or else into a node-local copy whose files are sent to the driver
(`meta.cluster_files`, looplab.experiment.cluster_files). The driver follows the sessions through their
dataframes (the progress lines) and analyses the trial as a local one.

A session whose node dies is run again by Ray (task retries) and continues from its last checkpoint
(`meta.checkpoint_frequency`), so it ends with the dataframe it would have had; the trial log says
which session started again, where, and from which frame.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from looplab import io
from looplab.env.pool import die_with_parent
from looplab.errors import LoopLabError
from looplab.experiment import cluster_files
from looplab.experiment.procs import start_daemon
from looplab.experiment.progress import ProgressView
from looplab.experiment.ray_cluster import looplab_env, start_ray
from looplab.experiment.session import session_worker
from looplab.experiment.stop import STOP
from looplab.runfolder import RunPaths
from looplab.spec.schema import Spec

log = logging.getLogger("looplab")
MAX_RETRIES = 3  # runs of a session after its node died
POLL_S = 1.0


def session_resources(spec: Spec, nodes: list[dict]) -> dict[str, float]:
    """What each session's task asks of the cluster: CPUs for its env workers, a GPU where the net wants one."""
    gpu = str(spec.net.gpu).lower() if spec.net is not None else "false"
    wants_gpu = gpu == "true" or (gpu in ("auto", "none") and any(n.get("GPU", 0) > 0 for n in nodes))
    return {"cpu": float(spec.meta.env_workers or 1), "gpu": 1.0 if wants_gpu else 0.0}


def answers(address: str, timeout: float = 5.0) -> bool:
    """Whether something listens at a cluster address `host:port` or a client address `ray://host:port`."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def require_answer(address: str, option: str = "--ray-address") -> None:
    """Refuse, in one line, a cluster address where nothing listens: ray.init would wait for minutes."""
    if ":" in address and not answers(address):
        raise LoopLabError(f"{option} {address}: no Ray cluster answers there (is its head node up? "
                           "`ray start --head` prints the address to use)")


def connect(address: str, spec: Spec, file: str) -> dict[str, float]:
    """Connect to the cluster; refuse a session that no node can hold (Ray would wait forever)."""
    import ray

    if spec.meta.distributed:
        raise LoopLabError(f"{file}: spec '{spec.name}': meta.distributed: Hogwild sessions share memory on one "
                           "machine; --ray-address cannot spread them over a cluster")
    require_answer(address)
    seconds = start_ray(address, 0, 0, looplab_env())
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    need = session_resources(spec, nodes)
    if not any(n.get("CPU", 0) >= need["cpu"] and n.get("GPU", 0) >= need["gpu"] for n in nodes):
        have = ", ".join(f"{n.get('CPU', 0):g} CPU/{n.get('GPU', 0):g} GPU" for n in nodes) or "no live node"
        ray.shutdown()
        raise LoopLabError(f"{file}: spec '{spec.name}': each session asks {need['cpu']:g} CPU (meta.env_workers) "
                           f"and {need['gpu']:g} GPU (agent.net.gpu) but no node of the Ray cluster at {address} "
                           f"has that ({have})")
    log.info("Ray cluster %s: %d node(s), connected in %.1f s; %g CPU and %g GPU per session", address, len(nodes),
             seconds, need["cpu"], need["gpu"])
    return need


def run_sessions(trial: Any, view: ProgressView, baseline: float) -> list[dict]:
    """The trial's sessions as Ray tasks; returns their scalar metrics ({} for one stopped before logging)."""
    import ray

    need = trial.cluster
    meta = trial.spec_dict["meta"]
    spec_dict = {**trial.spec_dict, "meta": {**meta, "env_workers": meta.get("env_workers") or int(need["cpu"])}}
    run_id = f"{time.time():.6f}"  # tells this invocation's attempts from an earlier one's (train@)
    task = ray.remote(session_task).options(num_cpus=need["cpu"], num_gpus=need["gpu"], max_retries=MAX_RETRIES,
                                            retry_exceptions=False)
    paths = trial.paths
    files = meta.get("cluster_files") or "auto"
    sending = {} if files == "shared" else {"files": files, "token": cluster_files.write_token(paths),
                                            "sink": cluster_files.start_sink(paths)}
    refs = [task.remote({"spec": spec_dict, "file": trial.spec_file, "root": str(paths.root), "name": paths.name,
                         "trial": trial.index, "session": s, "seed": trial.seeds[s], "mode": trial.mode,
                         "baseline": baseline, "resume": True, "run_id": run_id, **sending})
            for s in range(trial.num_sessions)]
    seen: dict[int, int] = {}
    try:
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
            follow(paths, trial.index, trial.num_sessions, view, run_id, seen)
            if STOP.signum:  # each session keeps its last checkpoint; train@ continues them
                for ref in pending:
                    ray.cancel(ref, force=True)
                break
        follow(paths, trial.index, trial.num_sessions, view, run_id, seen)
        return [_result(ref, s, paths, trial.index) for s, ref in enumerate(refs)]
    finally:
        cluster_files.remove_token(paths)
        ray.shutdown()


def _result(ref: Any, session: int, paths: RunPaths, trial: int) -> dict:
    import ray
    from ray.exceptions import RayError, TaskCancelledError

    try:
        return ray.get(ref)
    except TaskCancelledError:
        return {}
    except RayError as e:
        cause = str(getattr(e, "cause", None) or e).strip().splitlines()
        raise LoopLabError(f"session {paths.prename(trial, session)} failed on the Ray cluster: "
                           f"{cause[-1] if cause else type(e).__name__}; see {paths.log_file(trial, session)}") from None


def follow(paths: RunPaths, trial: int, num_sessions: int, view: ProgressView, run_id: str,
           seen: dict[int, int]) -> None:
    """Progress from each session's last logged row; a log line for each session run again."""
    for s in range(num_sessions):
        df_path = paths.session_df(trial, s)
        if df_path.exists():
            try:
                row = pd.read_csv(df_path).iloc[-1]
            except (ValueError, IndexError, OSError):  # written at this moment
                row = None
            if row is not None:
                view.update({"session": s, "frame": int(row["frame"]), "fps": float(row["fps"]),
                             "total_reward": float(row["total_reward"]),
                             "total_reward_ma": float(row["total_reward_ma"])})
        attempts = [a for a in _attempts(paths, trial, s) if a.get("run_id") == run_id]
        for a in attempts[seen.get(s, 1):]:
            log.warning("session %s was lost with its node and runs again on %s (attempt %d), from its checkpoint "
                        "at frame %s", paths.prename(trial, s), a["node"], a["attempt"], a["frame"])
        seen[s] = max(seen.get(s, 1), len(attempts))


def _attempts(paths: RunPaths, trial: int, session: int) -> list[dict]:
    try:
        return io.read_json(paths.attempts(trial, session))
    except (OSError, ValueError):
        return []


def session_task(job: dict) -> dict:
    """The Ray task: in the run folder, or a node-local one whose files go to the driver, record this attempt,
    run the session in a child process, return its scalar metrics."""
    with cluster_files.session_root(job) as root:
        return _attempt({**{k: v for k, v in job.items() if k not in ("sink", "token")}, "root": root})


def _attempt(job: dict) -> dict:
    paths = RunPaths(Path(job["root"]), job["name"])
    trial, session = job["trial"], job["session"]
    attempts = _attempts(paths, trial, session)
    df_path = paths.session_df(trial, session)
    frame = int(pd.read_csv(df_path)["frame"].iloc[-1]) if df_path.exists() else 0
    mine = [a for a in attempts if a.get("run_id") == job["run_id"]]
    io.write_json(paths.attempts(trial, session), [*attempts, {
        "run_id": job["run_id"], "attempt": len(mine) + 1, "node": socket.gethostname(), "pid": os.getpid(),
        "frame": frame, "run_folder": job["root"], "started": time.strftime("%Y-%m-%d %H:%M:%S")}])
    proc = subprocess.run([sys.executable, "-m", "looplab.experiment.cluster"], input=json.dumps(job),
                          capture_output=True, text=True, start_new_session=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"session process exited with code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _session_process(job: dict) -> dict:
    """Child of the Ray task: the session itself; dies with the task's worker (a lost node)."""
    parent = os.getppid()
    die_with_parent(parent)

    def orphaned() -> None:  # PDEATHSIG follows the thread that started us; this follows the process
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    start_daemon(orphaned, "looplab-orphan-watch")
    paths = RunPaths(Path(job["root"]), job["name"])
    return session_worker(job["spec"], job["file"], job["root"], job["name"], job["trial"], job["session"],
                          job["seed"], job["mode"], None, job["baseline"],
                          str(paths.log_file(job["trial"], job["session"])), job["resume"])


if __name__ == "__main__":
    print(json.dumps(_session_process(json.loads(sys.stdin.read()))))
