"""Mode 'search': Ray Tune experiments through the CLI (local Ray, a two-node cluster with ASHA)."""

from __future__ import annotations

import ctypes
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from looplab.errors import LoopLabError, SpecError
from looplab.experiment.search import run_search
from tests.conftest import ROOT, only_run, run_cli

RAY = str(Path(sys.executable).parent / "ray")
SEARCH_TIMEOUT = 600  # a search takes ~1 min on an idle 2-core machine, several under heavy load


def search_spec(tmp_path: Path, search: dict, **meta) -> Path:
    """The demo PPO CartPole spec cut to a few hundred frames per session, with a search section."""
    spec = json.loads((ROOT / "looplab" / "spec" / "library" / "demo.json").read_text())["ppo_cartpole"]
    spec["env"]["max_frame"] = 1000
    spec["agent"]["algorithm"].update(time_horizon=64, minibatch_size=64, training_epoch=2)
    spec["agent"]["net"]["lr_scheduler_spec"] = None
    spec["meta"].update(log_frequency=250, max_session=2, random_seed=7, search_resources={"cpu": 1}, **meta)
    spec["search"] = search
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"search_cartpole": spec}))
    return path


def processes(environ: bool = False) -> dict[int, str]:
    """Command lines (and with `environ`, environments) of the live processes."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                text = (d / "cmdline").read_bytes()
                if environ:
                    text += b" " + (d / "environ").read_bytes()
                out[int(d.name)] = text.replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                pass
    return out


def leftovers(run_root: Path, driver_pid: int) -> list[str]:
    """Processes of this run still alive: its local Ray (session dir named by the driver's pid), its trials
    and their sessions (marked by LOOPLAB_SEARCH_RUN in their environment)."""
    session = re.compile(rf"session_[0-9_-]+_{driver_pid}\b")
    return [c[:200] for c in processes(environ=True).values() if session.search(c) or str(run_root) in c]


def test_search_rejects_bad_search_before_ray(tmp_path, data_dir):
    path = search_spec(tmp_path, {"agent.algorithm.lamm__uniform": [0.8, 0.9]}, max_trial=2)
    proc = run_cli("run", str(path), "search_cartpole", "search", data_dir=data_dir)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "search.agent.algorithm.lamm__uniform" in lines[0] and "unknown key" in lines[0]
    assert not any(data_dir.iterdir())  # nothing started, nothing written
    # the same checks in-process (no Ray is imported before they pass)
    path = search_spec(tmp_path, {"agent.algorithm.lam__uniform": [0.8, 0.9]}, max_trial=2,
                       search_scheduler={"grace_period": 250, "reduction": 2})
    with pytest.raises(SpecError, match="meta.search_scheduler.reduction: unknown ASHA setting"):
        run_search(str(path), "search_cartpole", None, None, str(data_dir), True)
    with pytest.raises(SpecError, match="grace_period .* exceeds max_t"):
        run_search(str(path), "search_cartpole", None, ["meta.search_scheduler={\"grace_period\": 5000}"],
                   str(data_dir), True)
    with pytest.raises(LoopLabError, match="Ray would wait forever"):
        run_search(str(path), "search_cartpole", None, ["meta.search_scheduler=null", "meta.search_resources.cpu=64"],
                   str(data_dir), True)
    assert not any(data_dir.iterdir())


def test_small_search_with_a_failing_trial(tmp_path, data_dir):
    # grid x sampled: lr 1e30 makes the loss non-finite, so those trials fail; the others must finish
    path = search_spec(tmp_path, {"agent.net.optim_spec.lr__grid_search": [0.003, 1e30],
                                  "agent.algorithm.lam__uniform": [0.8, 0.99]}, max_trial=2, max_nonfinite=1,
                       num_cpus=2)
    proc = run_cli("run", str(path), "search_cartpole", "search", "--keep", "1", "-q", data_dir=data_dir,
                   timeout=SEARCH_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = only_run(data_dir)
    n = "search_cartpole"
    df = pd.read_csv(root / f"{n}_experiment_df.csv")
    assert sorted(df["trial"]) == [0, 1, 2, 3]
    assert {"agent.net.optim_spec.lr", "agent.algorithm.lam", "strength", "total_reward_ma", "consistency",
            "status", "error"} <= set(df.columns)
    by_trial = df.set_index("trial")
    # trials alternate grid points; configurations pair with their own trial's saved spec
    assert list(by_trial.loc[[0, 1, 2, 3], "agent.net.optim_spec.lr"]) == [0.003, 1e30, 0.003, 1e30]
    for t in range(4):
        saved = json.loads((root / f"{n}_t{t}_spec.json").read_text())
        assert saved["agent"]["algorithm"]["lam"] == pytest.approx(by_trial.loc[t, "agent.algorithm.lam"])
        assert saved["meta"]["trial"] == t and "search" not in saved
    assert list(by_trial.loc[[1, 3], "status"]) == ["failed", "failed"]
    assert by_trial.loc[[1, 3], "error"].str.len().min() > 10
    assert list(by_trial.loc[[0, 2], "status"]) == ["finished", "finished"]
    assert (by_trial.loc[[0, 2], "frame"] == 1000).all()
    finished = df[df["status"] == "finished"]
    assert list(finished["strength"]) == sorted(finished["strength"], reverse=True)
    assert list(df["status"][:2]) == ["finished", "finished"]  # failed trials (no strength) last
    # two trials at a time: the trial started after a finished one runs in its Ray worker (reuse_actors), so
    # four trials take fewer than four workers (a failed trial's worker is not reused)
    pids = [json.loads((root / "info" / f"{n}_t{t}_trial_status.json").read_text())["pid"] for t in range(4)]
    assert len(set(pids)) < 4, pids
    # 2 sessions per trial, each with its own seed
    assert len(set(json.loads((root / f"{n}_t0_spec.json").read_text())["meta"]["session_seeds"])) == 2
    # the best spec: the best trial's spec, runnable as is
    best_t = int(finished["trial"].iat[0])
    best = json.loads((root / f"{n}_best_spec.json").read_text())
    assert list(best) == [n] and "search" not in best[n] and "trial" not in best[n]["meta"]
    assert best[n]["agent"]["net"]["optim_spec"]["lr"] == 0.003
    assert best[n]["agent"]["algorithm"]["lam"] == pytest.approx(by_trial.loc[best_t, "agent.algorithm.lam"])
    # outputs: graphs, report, models of the best trial only (--keep 1)
    for f in (f"{n}_experiment_graph.png", f"{n}_multi_trial_graph_mean_returns_ma_vs_frames.png", "index.html"):
        assert (root / f).stat().st_size > 1000, f
    models = {p.name.split("_s")[0] for p in (root / "model").iterdir()}
    assert models == {f"{n}_t{best_t}"}
    status = json.loads((root / "run.json").read_text())
    assert status["status"] == "finished" and status["trials_failed"] == 2 and status["trials_finished"] == 2
    assert leftovers(root, status["pid"]) == []
    # the best spec trains as is
    train = data_dir / "train"
    proc = run_cli("run", str(root / f"{n}_best_spec.json"), n, "train", "--set", "env.max_frame=500",
                   "--set", "meta.max_session=1", "-q", data_dir=train)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (only_run(train) / "info" / f"{n}_t0_s0_session_df_train.csv").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, however it dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_node(args: list[str], env: dict) -> subprocess.Popen:
    """`ray start --block`: its processes share its fate (Ray's reaper), and it shares the test's."""
    return subprocess.Popen([RAY, "start", "--block", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                            start_new_session=True)


def wait_for_raylets(temp_dir: Path, n: int, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if sum("raylet" in c and str(temp_dir) in c for c in processes().values()) >= n:
            return
        time.sleep(0.5)
    raise AssertionError(f"{n} Ray node(s) did not start in {timeout:g} s")


def stop_nodes(nodes: list[subprocess.Popen], temp_dir: Path) -> None:
    """Stop the Ray nodes this test started, by their processes, then anything left of their temp dir."""
    for node in nodes:
        node.terminate()
    for node in nodes:
        try:
            node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node.kill()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = [pid for pid, c in processes().items() if str(temp_dir) in c]
        for pgid in {g for p in left if (g := _pgid(p)) is not None} - {os.getpgrp()}:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        if left:
            time.sleep(2)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:  # it ended meanwhile
        return None


@pytest.mark.slow
def test_asha_search_on_a_two_node_cluster(tmp_path, data_dir):
    temp_dir = Path("/tmp") / f"llray{secrets.token_hex(3)}"  # short: Ray's socket paths have a length limit
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    head = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats"]
    nodes: list[subprocess.Popen] = []
    try:
        nodes.append(start_node(["--head", "--port", str(port), "--include-dashboard", "false",
                                 "--temp-dir", str(temp_dir), *head], env))
        wait_for_raylets(temp_dir, 1)
        nodes.append(start_node(["--address", f"127.0.0.1:{port}", *head], env))
        wait_for_raylets(temp_dir, 2)
        # episodes cut at 10 steps cap every return at 10, far below a random CartPole policy (~22):
        # those trials fall under ASHA's cutoff at the first rung, whatever order the trials arrive in
        path = search_spec(tmp_path, {"env.max_episode_steps__grid_search": [500, 10],
                                      "agent.net.optim_spec.lr__loguniform": [1e-3, 1e-2]},
                           max_trial=2, search_scheduler={"grace_period": 250, "reduction_factor": 2})
        proc = run_cli("run", str(path), "search_cartpole", "search", "--ray-address", f"127.0.0.1:{port}", "-q",
                       data_dir=data_dir, env={k: env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}, timeout=SEARCH_TIMEOUT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        root = only_run(data_dir)
        df = pd.read_csv(root / "search_cartpole_experiment_df.csv").set_index("trial")
        assert sorted(df.index) == [0, 1, 2, 3] and set(df["status"]) <= {"finished", "stopped"}
        stopped = df[df["status"] == "stopped"]
        assert len(stopped) >= 1
        # ASHA stops the 10-step trials at a rung; when both trials of a pair reach a rung together, Tune can
        # stop one at its last report instead, a race with the trial's own end (seen on a quiet machine)
        assert (stopped["frame"] <= 1000).all() and (stopped["env.max_episode_steps"] == 10).all()
        assert stopped["total_reward_ma"].notna().all()  # metrics of the part that ran
        assert (df.loc[df["status"] == "finished", "frame"] == 1000).all()
        status = json.loads((root / "run.json").read_text())
        assert status["ray_address"] == f"127.0.0.1:{port}" and status["trials_stopped"] == len(stopped)
        assert leftovers(root, status["pid"]) == []  # stopped trials' sessions ended
    finally:
        stop_nodes(nodes, temp_dir)
    assert [c for c in processes().values() if str(temp_dir) in c] == []
