"""Runs you can trust, through the CLI: SIGKILL + train@RUN_DIR, SIGTERM, enjoy, the training guard,
atomic checkpoint writes and secrets kept out of run folders."""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from looplab import faults, io
from looplab.env.pool import usable_cores
from looplab.errors import LoopLabError
from looplab.experiment import checkpoint
from tests.conftest import ROOT, SLM_SPECS, only_run, run_cli
from tests.experiment.test_processes import MARK, marked, state

PPO = str(SLM_SPECS / "benchmark/ppo/ppo_cartpole.json")
SETS = ["--set", "env.max_frame=800", "--set", "meta.log_frequency=100", "--set", "meta.max_session=1",
        "--set", "meta.random_seed=3", "--set", "meta.tensorboard=false", "--set", "env.num_envs=2",
        "--set", "agent.algorithm.time_horizon=32", "--set", "agent.algorithm.training_epoch=2",
        "--set", "meta.checkpoint_frequency=100"]  # a resume checkpoint at every log checkpoint
SECRET = "hf_do_not_write_me_0123456789"


def train(data_dir: Path, *extra: str, signal_at: str = "", **env: str) -> subprocess.CompletedProcess:
    """`train` run to its end; `signal_at` ([PRENAME@]FRAME:SIGNAL) makes the session signal itself at FRAME."""
    return run_cli("run", PPO, "ppo_cartpole", "train", *SETS, *extra, "-q", data_dir=data_dir,
                   env={"HF_TOKEN": SECRET, **({faults.SIGNAL_AT: signal_at} if signal_at else {}), **env})


def popen(cmd: list[str], signal_at: str = "", **env: str) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONHASHSEED": "0", **env}
    if signal_at:
        full_env[faults.SIGNAL_AT] = signal_at
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, cwd=ROOT)


def session_df(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "info" / "ppo_cartpole_t0_s0_session_df_train.csv").drop(columns=["wall_t", "fps"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A run never stopped, in process (the CLI runs below must match it bit for bit)."""
    from looplab.experiment import evaluation
    from looplab.experiment import session as session_mod
    from looplab.experiment.run import prepare
    from looplab.experiment.seeds import session_seed
    from looplab.experiment.session import Session
    from looplab.runfolder import RunPaths

    raw, spec, _ = prepare(PPO, "ppo_cartpole", None, [s for s in SETS if s != "--set"])
    paths = RunPaths.create(tmp_path_factory.mktemp("ref"), spec.name)
    io.write_json(paths.root / "ppo_cartpole_spec.json", raw)
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session_mod, "session_graphs", lambda *a, **k: [])
        mp.setattr(evaluation, "session_graphs", lambda *a, **k: [])
        Session(spec, paths, 0, 0, session_seed(3, 0, 0), "train").run()
    return paths.root


def test_sigkill_at_random_moments_then_resume_matches_a_run_never_stopped(reference, data_dir):
    rng = random.Random(0)
    # first killed mid-way between two log checkpoints (a row every 100 frames, 2 frames a step), at a
    # seeded frame: the session kills itself there, so the kill never comes too late on a loaded machine
    first = 100 * rng.randrange(2, 7) + 2 * rng.randrange(1, 50)
    proc = train(data_dir, signal_at=f"{first}:KILL")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run = only_run(data_dir)
    done = len(session_df(run))
    assert done == first // 100
    # then killed right at a checkpoint boundary: just after the next row and checkpoint were written
    resumed = run_cli("run", PPO, "ppo_cartpole", f"train@{run}", "-q",
                      env={faults.SIGNAL_AT: f"{(done + 1) * 100}:KILL"})
    assert resumed.returncode == -signal.SIGKILL, resumed.stderr[-2000:]
    assert len(session_df(run)) == done + 1
    proc = run_cli("run", PPO, "ppo_cartpole", "train@latest", "-q", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert only_run(data_dir) == run  # continued in place, no new folder
    pd.testing.assert_frame_equal(session_df(run), session_df(reference), check_exact=True)
    for name in ("net", "critic_net"):
        a = torch.load(run / "model" / f"ppo_cartpole_t0_s0_{name}_model.pt", weights_only=True)
        b = torch.load(reference / "model" / f"ppo_cartpole_t0_s0_{name}_model.pt", weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a)
    status = io.read_json(run / "run.json")
    assert status["status"] == "finished" and status["resumed"] == 2
    # no token from the environment in anything the run wrote
    for f in run.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".log", ".csv", ".txt", ".html"):
            assert SECRET not in f.read_text(errors="ignore"), f


def test_sigterm_stops_cleanly_and_resumes_exactly(reference, data_dir):
    proc = train(data_dir, signal_at="350:TERM")
    err = proc.stderr
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    run = only_run(data_dir)
    status = io.read_json(run / "run.json")
    assert status["status"] == "interrupted"
    ckpt = checkpoint.load(run / "model" / "ppo_cartpole_t0_s0_ckpt.pt")
    assert ckpt["clock"]["frame"] == 350
    assert (run / "info" / "ppo_cartpole_t0_s0_session_metrics_scalar_train.json").exists()  # analysis of what ran
    proc = run_cli("run", PPO, "ppo_cartpole", f"train@{run}", "-q")
    assert proc.returncode == 0, proc.stderr[-2000:]
    pd.testing.assert_frame_equal(session_df(run), session_df(reference), check_exact=True)


def test_a_full_disk_stops_the_session_keeps_the_last_checkpoint_and_resume_finishes(reference, data_dir):
    # from the third checkpoint write on, the disk is full (every write fails with ENOSPC)
    proc = train(data_dir, **{faults.DISK_FULL: "*_ckpt.pt:3"})
    err = proc.stderr
    assert proc.returncode == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    run = only_run(data_dir)
    ckpt = run / "model" / "ppo_cartpole_t0_s0_ckpt.pt"
    assert f"cannot write {ckpt}: No space left on device (" in lines[0] and " free there)" in lines[0]
    assert f"train@{run}" in lines[0]
    assert checkpoint.load(ckpt)["clock"]["frame"] == 200  # the last good one, intact
    assert not [p for p in run.rglob("*.tmp")]  # no half-written file left
    proc = run_cli("run", PPO, "ppo_cartpole", f"train@{run}", "-q")  # space freed
    assert proc.returncode == 0, proc.stderr[-2000:]
    pd.testing.assert_frame_equal(session_df(run), session_df(reference), check_exact=True)
    assert io.read_json(run / "run.json")["status"] == "finished"


def test_enjoy_replays_the_best_checkpoint_into_a_new_folder(reference, data_dir):
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in reference.rglob("*") if p.is_file()}
    proc = run_cli("run", PPO, "ppo_cartpole", f"enjoy@{reference}", "--episodes", "2", "--record", "-q",
                   data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = only_run(data_dir)
    assert out != reference
    df = pd.read_csv(out / "info" / "ppo_cartpole_t0_s0_session_df_enjoy.csv")
    assert len(df) == 2 and (df["total_reward"] > 0).all()
    video = list(out.glob("*_enjoy.mp4")) + list(out.glob("*_enjoy.gif"))
    assert video and video[0].stat().st_size > 1000
    assert io.read_json(out / "run.json")["source"] == str(reference)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in reference.rglob("*") if p.is_file()}
    assert before == after  # the original run is never written


def test_resume_of_a_missing_or_foreign_run_is_a_clear_error(reference, data_dir):
    from looplab.experiment.resume import run_resume

    with pytest.raises(LoopLabError, match="no run folder of spec 'ppo_cartpole'"):
        run_resume(PPO, "ppo_cartpole", "latest", str(data_dir), True)
    with pytest.raises(LoopLabError, match="is a run of spec 'ppo_cartpole', not 'dqn'"):
        run_resume(PPO, "dqn", str(reference), str(data_dir), True)


def test_persistent_nonfinite_loss_stops_with_the_step_and_last_good_checkpoint(tmp_path, monkeypatch):
    from looplab.experiment import evaluation
    from looplab.experiment import session as session_mod
    from looplab.experiment.run import prepare
    from looplab.experiment.session import Session
    from looplab.runfolder import SUBDIRS, RunPaths

    monkeypatch.setattr(session_mod, "session_graphs", lambda *a, **k: [])
    monkeypatch.setattr(evaluation, "session_graphs", lambda *a, **k: [])
    _, spec, _ = prepare(PPO, "ppo_cartpole", None, [s for s in SETS if s != "--set"] + ["meta.max_nonfinite=3"])
    for sub in SUBDIRS:
        (tmp_path / sub).mkdir()
    s = Session(spec, RunPaths(tmp_path, spec.name), 0, 0, 1, "train")
    real_step = s.agent.step_optims

    def poisoned(losses):
        if s.clock.frame > 250:  # after two good checkpoints, every loss is NaN
            losses = {name: loss * float("nan") for name, loss in losses.items()}
        return real_step(losses)

    s.agent.step_optims = poisoned
    with pytest.raises(LoopLabError) as err:
        s.run()
    msg = str(err.value)
    assert "non-finite" in msg and "by frame" in msg and str(s.ckpt_path) in msg
    good = checkpoint.load(s.ckpt_path)
    assert good["clock"]["frame"] < s.clock.frame  # the last good checkpoint was not overwritten
    params = good["algorithm"]["nets"]["net"]
    assert all(torch.isfinite(v).all() for v in params.values())
    df = pd.read_csv(s.paths.session_df(0, 0))
    assert df["nonfinite"].iloc[-1] >= 3 and df["nonfinite"].iloc[0] == 0


def test_a_failing_checkpoint_write_is_clear_and_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    checkpoint.save(path, {"frame": 1})
    good = path.read_bytes()

    def disk_full(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(io.WriteError, match="No space left on device"):
        checkpoint.save(path, {"frame": 2})
    assert path.read_bytes() == good and list(tmp_path.iterdir()) == [path]
    monkeypatch.undo()
    assert checkpoint.load(path)["frame"] == 1


def test_checkpoints_round_trip_numpy_and_rng_states_under_weights_only(tmp_path):
    import numpy as np

    state = {"rng": checkpoint.global_rng_state(), "arr": np.arange(6, dtype=np.uint32).reshape(2, 3),
             "gen": np.random.default_rng(5).bit_generator.state, "f": np.float32(1.5), "t": (1, [2.0, None])}
    checkpoint.save(tmp_path / "c.pt", state)
    back = checkpoint.load(tmp_path / "c.pt")
    assert back["arr"].dtype == np.uint32 and (back["arr"] == state["arr"]).all()
    assert back["gen"] == state["gen"] and back["f"] == 1.5 and back["t"] == (1, [2.0, None])
    checkpoint.set_global_rng_state(back["rng"])
    (tmp_path / "evil.pt").write_bytes(b"\x80\x04cos\nsystem\n.")
    with pytest.raises(LoopLabError, match="cannot load checkpoint"):
        checkpoint.load(tmp_path / "evil.pt")


def test_an_env_whose_physics_cannot_be_saved_restarts_its_episode():
    from looplab.env import Env
    from looplab.experiment.run import prepare

    _, spec, _ = prepare(str(SLM_SPECS / "benchmark/ppo/ppo_cartpole.json"), "ppo_cartpole", None,
                         ["env.name=LunarLander-v3", "env.num_envs=1"], check_env=False)
    env = Env(spec, 0)
    env.reset()
    saved = checkpoint.env_state(env)
    assert saved["subs"][0]["exact"] is False
    restart = checkpoint.load_env_state(env, saved)
    assert restart is not None and restart.all()
    env.close()


def test_sigterm_with_parallel_sessions_is_forwarded_and_queued_sessions_do_not_start(data_dir):
    """3 sessions on at most 2 worker processes: the running ones pause themselves at frame 400; SIGTERM to
    the command is forwarded to them, they stop with a checkpoint there, and the queued one never starts.
    Without forwarding the run would go on for minutes."""
    mark = secrets.token_hex(8)
    cmd = [sys.executable, "-m", "looplab.cli", "run", PPO, "ppo_cartpole", "train", "--set", "env.max_frame=200000",
           "--set", "meta.log_frequency=200", "--set", "meta.max_session=3", "--set", "meta.tensorboard=false", "-q",
           "--data-dir", str(data_dir)]
    proc = popen(cmd, "400:STOP", **{MARK: mark})
    running = min(2, usable_cores())
    end = time.time() + 600
    while len(paused := [p for p in marked(mark) if state(p) in ("T", "t")]) < running:
        assert proc.poll() is None and time.time() < end, proc.stderr.read()[-2000:] if proc.stderr else ""
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    while not all(pending(p, signal.SIGTERM) for p in paused):  # forwarded; handled once they continue
        assert proc.poll() is None and time.time() < end
        time.sleep(0.05)
    for pid in paused:
        os.kill(pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-2000:]
    run = only_run(data_dir)
    assert io.read_json(run / "run.json")["status"] == "interrupted"
    frames = [checkpoint.load(c)["clock"]["frame"] for c in sorted(run.glob("model/*_ckpt.pt"))]
    # the queued session, already handed to a worker process, stops before its first step
    assert frames.count(400) == running and set(frames) <= {0, 400}
    assert marked(mark) == []


def pending(pid: int, signum: int) -> bool:
    """Whether `signum` waits to be delivered to the (stopped) process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("ShdPnd:", "SigPnd:")) and int(line.split()[1], 16) >> (signum - 1) & 1:
            return True
    return False


def test_a_session_stopped_before_its_first_step_starts_over_on_resume(reference, tmp_path, monkeypatch):
    """No checkpoint at frame 0 (there is nothing to keep); one that an earlier version wrote there is read as
    a fresh start, not restored into envs that were never reset. Either way the run equals one never stopped."""
    from looplab.experiment import evaluation
    from looplab.experiment import session as session_mod
    from looplab.experiment.run import prepare
    from looplab.experiment.seeds import session_seed
    from looplab.experiment.session import Session
    from looplab.experiment.stop import STOP
    from looplab.runfolder import RunPaths

    _, spec, _ = prepare(PPO, "ppo_cartpole", None, [s for s in SETS if s != "--set"])
    monkeypatch.setattr(session_mod, "session_graphs", lambda *a, **k: [])
    monkeypatch.setattr(evaluation, "session_graphs", lambda *a, **k: [])
    torch.set_num_threads(1)
    seed = session_seed(3, 0, 0)
    for old_checkpoint in (False, True):
        paths = RunPaths.create(tmp_path / str(old_checkpoint), spec.name)
        monkeypatch.setattr(STOP, "signum", signal.SIGTERM)
        stopped = Session(spec, paths, 0, 0, seed, "train")
        assert stopped.run() == {} and not stopped.ckpt_path.exists()
        if old_checkpoint:
            stopped.save_checkpoint(stopped.env.reset())
        monkeypatch.setattr(STOP, "signum", 0)
        Session(spec, paths, 0, 0, seed, "train", resume=True).run()
        pd.testing.assert_frame_equal(session_df(paths.root), session_df(reference), check_exact=True)


def test_sigterm_to_the_whole_process_group_ends_a_parallel_trial(data_dir):
    """`kill -TERM -- -PGID` reaches the trial, its fork server and its sessions at once: the command still
    ends (it used to wait forever on sessions whose workers were gone), prints no thread's traceback (the
    progress pump's lost manager, the executor's cancelled third session) and leaves no process behind."""
    mark = secrets.token_hex(8)
    cmd = [sys.executable, "-m", "looplab.cli", "run", PPO, "ppo_cartpole", "train", "--set", "env.max_frame=200000",
           "--set", "meta.log_frequency=200", "--set", "meta.max_session=3", "--set", "meta.tensorboard=false", "-q",
           "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, MARK: mark}, start_new_session=True)
    end = time.time() + 300
    while not list(data_dir.glob("*/info/*_s0_session_df_train.csv")):  # the sessions are training
        assert proc.poll() is None and time.time() < end, proc.stderr.read()[-2000:] if proc.stderr else ""
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    # a stop, not a failure (the benchmark runner goes on to its next row after a failed one)
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err and "Exception in thread" not in err, err[-3000:]
    run = next(data_dir.glob("ppo_cartpole_*"))
    assert io.read_json(run / "run.json")["status"] == "interrupted"
    deadline = time.time() + 30
    while marked(mark) and time.time() < deadline:
        time.sleep(0.2)
    assert marked(mark) == []


def test_weights_are_written_with_checkpoints_and_the_best_ones_are_those_of_the_best_ma(tmp_path, monkeypatch):
    """Log checkpoints every 100 frames, resume checkpoints every 300: the weights files go with the resume
    checkpoints (and the last frame), not with every log row; the best-MA weights, kept in memory until then,
    are those the nets had at the log checkpoint of the best MA. The session's CSV is written at every log
    checkpoint and synced to disk only with the resume checkpoints, which hold its rows."""
    from looplab.experiment import evaluation
    from looplab.experiment import session as session_mod
    from looplab.experiment.run import prepare
    from looplab.experiment.seeds import session_seed
    from looplab.experiment.session import Session
    from looplab.runfolder import RunPaths

    _, spec, _ = prepare(PPO, "ppo_cartpole", None, [s for s in SETS if s != "--set"]
                         + ["meta.checkpoint_frequency=300"])
    monkeypatch.setattr(session_mod, "session_graphs", lambda *a, **k: [])
    monkeypatch.setattr(evaluation, "session_graphs", lambda *a, **k: [])
    torch.set_num_threads(1)
    writes: list[tuple[str, int]] = []
    at_log: dict[int, dict] = {}
    session = Session(spec, RunPaths.create(tmp_path, spec.name), 0, 0, session_seed(3, 0, 0), "train")
    real_save, real_log = io.torch_save, session.log_checkpoint

    def save(path, obj):
        writes.append((Path(path).name, session.clock.frame))
        real_save(path, obj)

    def log_checkpoint(state):
        at_log[session.clock.frame] = {k: v.detach().clone() for k, v in session.agent.nets()["net"].state_dict().items()}
        real_log(state)

    csv_writes: list[tuple[int, bool]] = []
    real_write_csv = io.write_csv

    def write_csv(path, df, sync=True):
        if Path(path) == session.paths.session_df(0, 0):
            csv_writes.append((session.clock.frame, sync))
        real_write_csv(path, df, sync=sync)

    monkeypatch.setattr(io, "torch_save", save)
    monkeypatch.setattr(io, "write_csv", write_csv)
    session.log_checkpoint = log_checkpoint
    session.run()
    assert [f for f, _ in csv_writes] == list(range(100, 900, 100))
    assert [f for f, sync in csv_writes if sync] == [300, 600, 800]
    weight_frames = sorted({f for name, f in writes if name.endswith("_net_model.pt") and "best" not in name})
    assert weight_frames == [300, 600, 800]
    assert sorted({f for name, f in writes if name.endswith("_ckpt.pt")}) == [300, 600, 800]
    df = pd.read_csv(session.paths.session_df(0, 0))
    best_frame = int(df["frame"][df["total_reward_ma"] == df["total_reward_ma"].max()].iloc[-1])
    best = checkpoint.load(session.paths.checkpoint(0, 0, best=True))
    assert best["frame"] == best_frame and best["best_ma"] == df["total_reward_ma"].max()
    for k, v in at_log[best_frame].items():
        assert torch.equal(best["nets"]["net"][k], v)
        assert torch.equal(io.torch_load(session.paths.weights(0, 0, "net", True))[k], v)


@pytest.mark.parametrize(("seconds", "expected"), [(1e9, [100, 800]), (0.0, list(range(100, 900, 100)))])
def test_without_checkpoint_frequency_checkpoints_go_by_wall_time(seconds, expected, reference, tmp_path,
                                                                    monkeypatch):
    """The default cadence: the first log checkpoint, then the first one CHECKPOINT_SECONDS after the last
    checkpoint, and the end; the run is the same whatever the cadence."""
    from looplab.experiment import evaluation
    from looplab.experiment import session as session_mod
    from looplab.experiment.run import prepare
    from looplab.experiment.seeds import session_seed
    from looplab.experiment.session import Session
    from looplab.runfolder import RunPaths

    sets = [s for s in SETS if s != "--set" and not s.startswith("meta.checkpoint_frequency")]
    _, spec, _ = prepare(PPO, "ppo_cartpole", None, sets)
    assert spec.meta.checkpoint_frequency is None
    monkeypatch.setattr(session_mod, "session_graphs", lambda *a, **k: [])
    monkeypatch.setattr(evaluation, "session_graphs", lambda *a, **k: [])
    monkeypatch.setattr(session_mod, "CHECKPOINT_SECONDS", seconds)
    torch.set_num_threads(1)
    session = Session(spec, RunPaths.create(tmp_path, spec.name), 0, 0, session_seed(3, 0, 0), "train")
    frames: list[int] = []
    real_save = checkpoint.save

    def save(path, obj):
        if Path(path) == session.ckpt_path:
            frames.append(session.clock.frame)
        real_save(path, obj)

    monkeypatch.setattr(checkpoint, "save", save)
    session.run()
    assert frames == expected
    df = pd.read_csv(session.paths.session_df(0, 0)).drop(columns=["wall_t", "fps"])
    assert len(df) == 8
    pd.testing.assert_frame_equal(df, session_df(reference), check_exact=True)  # made checkpointing every 100
