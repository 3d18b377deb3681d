"""A train trial's sessions on a Ray cluster (`--ray-address`): a local 3-node cluster started here."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from looplab.experiment.cluster import answers
from tests.conftest import only_run, run_cli
from tests.experiment.test_search import _free_port, processes, start_node, stop_nodes, wait_for_raylets

A2C = "looplab/spec/library/a2c_cartpole.json"
NAME = "a2c_cartpole"
SESSIONS = 4
TIME_COLUMNS = ["wall_t", "fps"]
TIMEOUT = 900  # the machine these run on is small and loaded


def trial_args(frames: int, log_frequency: int) -> list[str]:
    sets = [f"env.max_frame={frames}", f"meta.log_frequency={log_frequency}", f"meta.max_session={SESSIONS}",
            "meta.random_seed=7", "meta.tensorboard=false"]
    return ["run", A2C, NAME, "train", *[a for s in sets for a in ("--set", s)], "-q"]


def kill_args() -> list[str]:
    """The trial whose worker node is killed: long enough that a session is seen mid-run (its rows reach the
    driver) before it ends, with a resume checkpoint at every log checkpoint."""
    return [*trial_args(32000, 1000), "--set", "meta.checkpoint_frequency=1000"]


def session_dfs(run: Path) -> list[pd.DataFrame]:
    return [pd.read_csv(run / "info" / f"{NAME}_t0_s{s}_session_df_train.csv").drop(columns=TIME_COLUMNS)
            for s in range(SESSIONS)]


def assert_same_sessions(run: Path, reference: Path) -> None:
    for got, want in zip(session_dfs(run), session_dfs(reference), strict=True):
        pd.testing.assert_frame_equal(got, want)


class Cluster:
    """A head and two worker nodes of one CPU each (`ray start`), on 127.0.0.1."""

    def __init__(self) -> None:
        self.temp_dir = Path("/tmp") / f"llray{secrets.token_hex(3)}"  # short: Ray's socket paths have a limit
        self.port = _free_port()
        self.auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        # a node slow to answer its health check on a loaded machine is not taken for dead; a killed one
        # refuses the check at once and is found dead after the usual 5 checks
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_health_check_timeout_ms": "120000",
                    **self.auth}
        self.node_args = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0",
                          "--disable-usage-stats"]
        self.nodes = [start_node(["--head", "--port", str(self.port), "--include-dashboard", "false",
                                  "--temp-dir", str(self.temp_dir), *self.node_args], self.env)]
        wait_for_raylets(self.temp_dir, 1)
        self.workers: list[subprocess.Popen] = []
        self.start_workers()

    def start_workers(self) -> None:
        """Two live worker nodes: those a test killed are started again."""
        self.workers = [w for w in self.workers if w.poll() is None]
        while len(self.workers) < 2:
            self.workers.append(start_node(["--address", self.address, *self.node_args], self.env))
            self.nodes.append(self.workers[-1])
        wait_for_raylets(self.temp_dir, 3)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, args: list[str], data_dir: Path):
        return run_cli(*args, "--ray-address", self.address, data_dir=data_dir, env=self.auth, timeout=TIMEOUT)

    def stop(self) -> None:
        stop_nodes(self.nodes, self.temp_dir)
        assert [c for c in processes().values() if str(self.temp_dir) in c] == []


class LocalRuns:
    """Each trial run here once per module, as the reference its cluster runs are compared with."""

    def __init__(self, root: Path) -> None:
        self.root, self.runs = root, {}

    def __call__(self, args: list[str]) -> Path:
        key = tuple(args)
        if key not in self.runs:
            data = self.root / f"local{len(self.runs)}"
            local = run_cli(*args, data_dir=data, timeout=TIMEOUT)
            assert local.returncode == 0, local.stderr[-2000:]
            self.runs[key] = only_run(data)
        return self.runs[key]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> LocalRuns:
    return LocalRuns(tmp_path_factory.mktemp("local_runs"))


def run_here_and_on_cluster(cluster: Cluster, local_run: LocalRuns, args: list[str], tmp_path: Path,
                            cluster_args: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """The trial run here (once per module) and on the cluster; returns the cluster's run folder and the local
    one, whose session dataframes are checked to be the same."""
    reference = local_run(args)
    on_cluster = cluster.run([*args, *cluster_args], tmp_path / "cluster")
    assert on_cluster.returncode == 0, on_cluster.stderr[-3000:]
    run = only_run(tmp_path / "cluster")
    assert_same_sessions(run, reference)
    return run, reference


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.stop()


def test_an_address_where_no_cluster_answers_is_one_line(data_dir):
    proc = run_cli(*trial_args(1000, 500), "--ray-address", f"127.0.0.1:{_free_port()}", data_dir=data_dir)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("looplab: error: --ray-address 127.0.0.1:")
    assert "no Ray cluster answers there" in lines[0]
    assert not any(data_dir.iterdir())


def test_a_client_address_where_nothing_listens_does_not_answer():
    assert not answers(f"ray://127.0.0.1:{_free_port()}") and not answers("ray://127.0.0.1:notaport")


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_search_on_an_address_where_no_cluster_answers_is_one_line(how, data_dir):
    address = f"127.0.0.1:{_free_port()}"
    args = ["run", A2C, NAME, "search", "-q"]
    if how == "option":
        proc = run_cli(*args, "--ray-address", address, data_dir=data_dir, timeout=60)
    else:
        proc = run_cli(*args, data_dir=data_dir, env={"RAY_ADDRESS": address}, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    option = "--ray-address" if how == "option" else "RAY_ADDRESS"
    assert len(lines) == 1 and lines[0].startswith(f"looplab: error: {option} {address}: no Ray cluster answers")
    assert not any(data_dir.iterdir())


@pytest.mark.slow
def test_cluster_trial_equals_the_local_one_and_resumes_there(cluster, local_run, tmp_path):
    args = trial_args(2000, 500)
    run, reference = run_here_and_on_cluster(cluster, local_run, args, tmp_path)
    for name in (f"{NAME}_t0_trial_metrics_scalar.json", f"{NAME}_t0_trial_graph_mean_returns_vs_frames.png",
                 f"model/{NAME}_t0_s3_net_model.pt", f"log/{NAME}_t0_s3.log", "index.html"):
        assert (run / name).exists(), name
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "finished" and status["ray_address"] == cluster.address
    for s in range(SESSIONS):  # meta.cluster_files: auto: each node saw the run folder and wrote there
        attempt = json.loads((run / "info" / f"{NAME}_t0_s{s}_attempts.json").read_text())[-1]
        assert Path(attempt["run_folder"]).resolve() == run.resolve()

    # a run whose session 1 was killed at frame 1000 here finishes on the cluster as if never stopped
    cut = tmp_path / "cut"
    killed = run_cli(*args, data_dir=cut, env={"LOOPLAB_SIGNAL_AT": f"{NAME}_t0_s1@1000:KILL"}, timeout=TIMEOUT)
    assert killed.returncode != 0
    resumed = cluster.run(["run", A2C, NAME, f"train@{only_run(cut)}", "-q"], cut)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_sessions(only_run(cut), reference)

    # a session that no node can hold: one line, no run folder
    big = tmp_path / "big"
    proc = cluster.run([*args, "--set", "meta.env_workers=4"], big)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "each session asks 4 CPU (meta.env_workers)" in line
    assert "no node of the Ray cluster at" in line
    assert not big.exists() or not any(big.iterdir())


@pytest.mark.slow
def test_a_session_whose_node_dies_runs_again_from_its_checkpoint(cluster, local_run, tmp_path):
    args = kill_args()
    data = tmp_path / "cluster"
    proc, _ = _run_and_kill_a_worker_node(cluster, args, data)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err[-3000:]
    run = only_run(data)
    for df in session_dfs(run):
        assert df["frame"].iloc[-1] == 32000
    log = (run / "log" / f"{NAME}.log").read_text()
    assert "was lost with its node and runs again" in log
    assert_same_sessions(run, local_run(args))


def _run_and_kill_a_worker_node(cluster: Cluster, args: list[str], data: Path, tries: int = 2):
    """Start the trial on the cluster; once a session on a worker node has a checkpoint, SIGKILL that node.
    Returns the trial's process and that session's index (other sessions on the node may not have reached
    their first checkpoint yet). Where Ray ran no session on a worker node long enough (a node it lost, a
    placement), the trial runs again."""
    failures = []
    for _ in range(tries):
        shutil.rmtree(data, ignore_errors=True)
        proc, killed, failure = _try_to_kill_a_worker_node(cluster, args, data)
        if killed is not None:
            return proc, killed
        failures.append(failure)
    raise AssertionError("no session ran on a worker node long enough to kill it: " + " | ".join(failures))


def _try_to_kill_a_worker_node(cluster: Cluster, args: list[str], data: Path):
    """(the trial's process, the index of the session whose node was killed, None), or (process, None, why not)."""
    import sys

    from tests.conftest import ROOT

    cluster.start_workers()  # an earlier test of the module may have killed one
    cmd = [sys.executable, "-m", "looplab.cli", *args, "--ray-address", cluster.address, "--data-dir", str(data)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0", **cluster.auth},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    nodes = {w.pid for w in cluster.workers}
    seen: dict[str, tuple[int, int | None, int]] = {}  # session -> (pid, its worker node, rows)
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and proc.poll() is None:
        for attempts in data.glob("*/info/*_attempts.json"):
            session = attempts.name.split("_t0_s")[1].split("_")[0]
            df = attempts.parent / f"{NAME}_t0_s{session}_session_df_train.csv"
            pid = json.loads(attempts.read_text())[-1]["pid"]
            node = _ancestor_in(pid, nodes)
            rows = len(df.read_text().splitlines()) - 1 if df.exists() else 0
            seen[session] = (pid, node, rows)
            if node is not None and rows >= 2:
                os.killpg(node, signal.SIGKILL)  # `ray start --block` leads its node's process group
                return proc, int(session), None
        time.sleep(0.5)
    proc.kill()
    err = proc.communicate()[1]
    alive = [w.pid for w in cluster.workers if w.poll() is None]
    return proc, None, (f"sessions seen (pid, worker node, rows): {seen}; worker nodes {sorted(nodes)}, "
                        f"alive {alive}; exit code {proc.returncode}: {err[-1000:]}")


def _ancestor_in(pid: int, pids: set[int]) -> int | None:
    """The first of `pids` among the ancestors of process `pid` (a Ray worker's: its raylet's `ray start`)."""
    while pid > 1:
        if pid in pids:
            return pid
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return None


SEND = ("--set", "meta.cluster_files=send")  # each session in a node-local folder, its files sent to the driver


def assert_sent_from_node_local_folders(run: Path, finished_only: bool = False) -> None:
    """Each session attempt ran in a node-local folder (not the run folder) that is gone now."""
    for s in range(SESSIONS):
        attempts = json.loads((run / "info" / f"{NAME}_t0_s{s}_attempts.json").read_text())
        for a in attempts[-1:] if finished_only else attempts:
            assert Path(a["run_folder"]) != run and not Path(a["run_folder"]).exists(), a
    assert not (run / ".cluster_token").exists()


@pytest.mark.slow
def test_sessions_that_send_their_files_give_the_run_folder_of_a_local_trial(cluster, local_run, tmp_path):
    run, reference = run_here_and_on_cluster(cluster, local_run, trial_args(2000, 500), tmp_path, SEND)
    assert_sent_from_node_local_folders(run)

    def files(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "_attempts" not in p.name}

    assert files(run) == files(reference)


@pytest.mark.slow
def test_a_session_that_sends_its_files_and_whose_node_dies_runs_again_from_its_checkpoint(cluster, local_run,
                                                                                           tmp_path):
    args = [*kill_args(), *SEND]
    data = tmp_path / "cluster"
    proc, killed = _run_and_kill_a_worker_node(cluster, args, data)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err[-3000:]
    run = only_run(data)
    assert "was lost with its node and runs again" in (run / "log" / f"{NAME}.log").read_text()
    assert_sent_from_node_local_folders(run, finished_only=True)
    for s in range(SESSIONS):  # the session seen with checkpoints fetched its latest from the driver, went on
        attempts = json.loads((run / "info" / f"{NAME}_t0_s{s}_attempts.json").read_text())
        if s == killed:  # another session on that node may have died before its first checkpoint: from frame 0
            assert len(attempts) > 1, attempts
            session_log = (run / "log" / f"{NAME}_t0_s{s}.log").read_text()
            resumed = re.search(r"resumed from \S+ at frame (\d+)", session_log)
            assert resumed is not None and int(resumed[1]) > 0 and attempts[-1]["frame"] > 0, (attempts, session_log)
        for a in attempts[:-1]:  # the folder the dead node left (on a real cluster it went with the node)
            shutil.rmtree(Path(a["run_folder"]).parent, ignore_errors=True)
    assert_same_sessions(run, local_run(kill_args()))
