"""`looplab benchmark`: a 2-row suite of tiny runs through the CLI, killed and interrupted mid-row, then
finished by a rerun that runs only what is missing; failed rows; bad input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from looplab import io
from looplab.errors import LoopLabError
from looplab.experiment import benchmark
from looplab.experiment.trial import Trial
from tests.conftest import ROOT, run_cli

SUITE = """name: tiny
description: "two tiny rows"
_row: &row
  env: CartPole-v1
  sessions: 1
  target: 15
  source: a made-up table
rows:
  - <<: *row
    algorithm: PPO
    spec_file: slm_lab/benchmark/ppo/ppo_cartpole.json
    spec_name: ppo_cartpole
    frames: 800
    reference: 1
    set: {meta.log_frequency: 100, meta.tensorboard: false, meta.random_seed: 3, env.num_envs: 2,
          agent.algorithm.time_horizon: 32, agent.algorithm.training_epoch: 2}
  - <<: *row
    algorithm: A2C
    spec_file: a2c_cartpole.json
    spec_name: a2c_cartpole
    frames: 3000
    reference: 1000
    set: {meta.log_frequency: 100, meta.tensorboard: false, meta.random_seed: 4, env.num_envs: 2}
"""


@pytest.fixture
def suite(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(SUITE)
    return path


def runs(data: Path) -> list[Path]:
    return sorted(p for p in data.iterdir() if (p / "run.json").exists())


def start(suite: Path, data: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "looplab.cli", "benchmark", str(suite), "--data-dir", str(data), "-q"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONHASHSEED": "0"})


def wait_checkpoint(state_file: Path, row: str, data: Path, proc: subprocess.Popen, timeout: float = 180) -> Path:
    """Wait until `row` has a run folder holding a session checkpoint; returns the folder."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            entry = io.read_json(state_file)["rows"].get(row)
        except (OSError, ValueError):
            entry = None
        if entry and list((data / entry["run"] / "model").glob("*_ckpt.pt")):
            return data / entry["run"]
        time.sleep(0.05)
    raise AssertionError(f"row {row} did not reach a checkpoint")


def test_killed_and_interrupted_rows_resume_and_a_rerun_finishes_only_what_is_missing(suite, data_dir):
    out = data_dir / "benchmark" / "tiny"
    state_file = out / "benchmark_state.json"
    # 1. killed (SIGKILL) in the first row, after its first checkpoint
    proc = start(suite, data_dir)
    ppo = wait_checkpoint(state_file, "ppo_cartpole", data_dir, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # 2. continues the first row in its folder, then is stopped (SIGTERM) in the second
    proc = start(suite, data_dir)
    a2c = wait_checkpoint(state_file, "a2c_cartpole", data_dir, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err
    state = io.read_json(state_file)["rows"]
    assert state["ppo_cartpole"]["status"] == "finished" and state["ppo_cartpole"]["run"] == ppo.name
    assert state["a2c_cartpole"]["status"] == "interrupted"
    assert io.read_json(ppo / "run.json")["resumed"] == 1
    assert "| interrupted |" in (out / "benchmark.md").read_text()
    ppo_status = (ppo / "run.json").read_bytes()
    # 3. a rerun skips the finished row and resumes the interrupted one in its folder
    page = data_dir / "page.md"
    page.write_text("# Our numbers\n\nSome words.\n")
    proc = run_cli("benchmark", str(suite), "--publish", str(page), data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ppo_cartpole: finished earlier" in proc.stderr
    assert "row 2 of 2: a2c_cartpole" in proc.stderr and "resumes in" in proc.stderr
    assert runs(data_dir) == sorted([ppo, a2c])
    assert (ppo / "run.json").read_bytes() == ppo_status  # not touched
    status = io.read_json(a2c / "run.json")
    assert status["status"] == "finished" and status["resumed"] == 1
    frames = pd.read_csv(a2c / "info" / "a2c_cartpole_t0_s0_session_df_train.csv")["frame"].tolist()
    assert frames == list(range(100, 3001, 100))
    state = io.read_json(state_file)
    assert {e["status"] for e in state["rows"].values()} == {"finished"} and state["pid"] is None
    assert all(e["wall_time"] > 0 for e in state["rows"].values())
    # the table: MA from the trial metrics, judged against the reference and the target
    csv = pd.read_csv(out / "benchmark.csv")
    assert csv["row"].tolist() == ["ppo_cartpole", "a2c_cartpole"]
    for _, r in csv.iterrows():
        run = data_dir / r["run"]
        name = io.read_json(run / "run.json")["spec_name"]
        metrics = io.read_json(run / f"{name}_t0_trial_metrics_scalar.json")
        assert r["total_reward_ma"] == pytest.approx(metrics["total_reward_ma"])
        assert r["total_reward_ma_ci_low"] == pytest.approx(metrics["total_reward_ma_ci_low"])
        assert r["beats_reference"] == (r["total_reward_ma"] >= r["reference"])
        assert r["beats_target"] == (r["total_reward_ma"] > 15)
        assert r["sessions"] == 1 and r["fps"] > 0 and len(r["git_sha"]) == 40
    assert csv["frames"].tolist() == [800, 3000]
    assert csv["beats_reference"].tolist() == [True, False]  # references 1 and 1000
    md = (out / "benchmark.md").read_text()
    assert md.count("| CartPole-v1 |") == 2 and "✅" in md and "❌" in md and "| finished |" in md
    assert "- command: `looplab benchmark" in md and "- sessions: 1" in md
    assert (out / "graphs" / "CartPole-v1_multi_trial_graph_mean_returns_ma_vs_frames.png").stat().st_size > 0
    text = page.read_text()
    assert text.startswith("# Our numbers\n\nSome words.\n") and text.count("looplab benchmark tiny: begin") == 1
    assert "](page_graphs/tiny_CartPole-v1.png)" in text and (data_dir / "page_graphs" / "tiny_CartPole-v1.png").exists()


def test_a_failed_row_is_recorded_and_the_suite_goes_on(suite, data_dir, monkeypatch):
    calls = []

    def fake_run(self):
        calls.append(self.paths.name)
        if self.paths.name == "ppo_cartpole":
            raise RuntimeError("boom\nsecond line")
        return {"total_reward_ma": 1.0}

    monkeypatch.setattr(Trial, "run", fake_run)
    monkeypatch.setattr(benchmark.Benchmark, "write", lambda self, publish: self.out / "benchmark.md")
    out = data_dir / "out"
    benchmark.run_benchmark(str(suite), out=str(out), data=str(data_dir), quiet=True)
    assert calls == ["ppo_cartpole", "a2c_cartpole"]
    rows = io.read_json(out / "benchmark_state.json")["rows"]
    assert rows["ppo_cartpole"]["status"] == "failed" and rows["ppo_cartpole"]["error"] == "RuntimeError: boom"
    assert rows["a2c_cartpole"]["status"] == "finished"
    assert "boom" in (out / "benchmark.log").read_text()
    benchmark.run_benchmark(str(suite), out=str(out), data=str(data_dir), quiet=True)
    assert len(calls) == 2  # a failed row stays failed ...
    benchmark.run_benchmark(str(suite), out=str(out), data=str(data_dir), quiet=True, retry_failed=True)
    assert calls[2:] == ["ppo_cartpole"]  # ... until asked, and then runs in a new folder
    assert len(runs(data_dir)) == 3


def test_budget_overrides_get_their_own_output_folder_and_select_rows(suite, data_dir, monkeypatch):
    monkeypatch.setattr(Trial, "run", lambda self: {})
    monkeypatch.setattr(benchmark.Benchmark, "write", lambda self, publish: self.out / "benchmark.md")
    benchmark.run_benchmark(str(suite), rows="a2c*", frames="2e2", sessions=2, data=str(data_dir), quiet=True)
    out = data_dir / "benchmark" / "tiny_frames200_sessions2"
    rows = io.read_json(out / "benchmark_state.json")["rows"]
    assert list(rows) == ["a2c_cartpole"]
    spec = io.read_json(data_dir / rows["a2c_cartpole"]["run"] / "a2c_cartpole_spec.json")
    assert (spec["env"]["max_frame"], spec["meta"]["max_session"]) == (200, 2)


@pytest.mark.parametrize("options, fragment", [
    ({"rows": "nothing"}, "tiny.yaml: --rows nothing: no row matches"),
    ({"frames": "1.5"}, "--frames must be a whole number of at least 1, got 1.5"),
    ({"sessions": 0}, "--sessions must be a whole number of at least 1, got 0"),
])
def test_bad_options_are_one_error_and_write_nothing(suite, data_dir, options, fragment):
    with pytest.raises(LoopLabError) as e:
        benchmark.run_benchmark(str(suite), data=str(data_dir), quiet=True, **options)
    assert fragment in str(e.value)
    assert list(data_dir.iterdir()) == []


def test_a_bad_suite_file_or_row_spec_is_one_line_naming_the_file_and_key(suite, data_dir):
    bad = suite.with_name("bad.yaml")
    bad.write_text(SUITE.replace("frames: 800", "framez: 800"))
    proc = run_cli("benchmark", str(bad), data_dir=data_dir)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"looplab: error: {bad}: rows.0.framez: unknown key (did you mean 'frames'?)\n"
    bad.write_text(SUITE.replace("spec_name: a2c_cartpole", "spec_name: a2c_cartpol"))
    proc = run_cli("benchmark", str(bad), data_dir=data_dir)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{bad}: rows.1 (a2c_cartpol): a2c_cartpole.json: spec 'a2c_cartpol': no spec named" in proc.stderr
    assert list(data_dir.iterdir()) == []


def test_finished_rows_are_kept_in_the_output_folder_and_skipped_without_their_run_folders(suite, data_dir,
                                                                                          monkeypatch):
    """A clone elsewhere (no data folder) still tabulates and skips the rows finished in the output folder."""
    out = data_dir / "out"
    benchmark.run_benchmark(str(suite), out=str(out), rows="a2c*", data=str(data_dir / "first"), quiet=True)
    state = io.read_json(out / benchmark.STATE_FILE)
    run = state["rows"]["a2c_cartpole"]["run"]
    kept = out / "runs" / run
    assert (kept / "run.json").is_file() and list((kept / "info").glob("*session_df_train.csv"))
    assert not list(kept.rglob("*.pt"))  # no checkpoints in the record
    shutil.rmtree(data_dir / "first")
    calls = []
    monkeypatch.setattr(benchmark.Benchmark, "run_row", lambda self, p, action, root: calls.append(p.row.name))
    md = benchmark.run_benchmark(str(suite), out=str(out), rows="a2c*", data=str(data_dir / "second"), quiet=True)
    assert calls == []  # skipped: its record is in the output folder
    rows = {r["row"]: r for r in pd.read_csv(out / "benchmark.csv").to_dict("records")}
    assert rows["a2c_cartpole"]["status"] == "finished" and rows["a2c_cartpole"]["total_reward_ma"] > 0
    assert "a2c_cartpole" in md.read_text() or "A2C" in md.read_text()


def test_rerun_runs_again_only_the_finished_rows_made_by_other_code(suite, data_dir, monkeypatch):
    """--rerun: a finished row made at another git SHA starts over (its old record stays); one made by this
    code is skipped, so the same command resumes and then skips like any other."""
    out = data_dir / "out"
    benchmark.run_benchmark(str(suite), out=str(out), rows="a2c*", data=str(data_dir), quiet=True)
    old = io.read_json(out / benchmark.STATE_FILE)["rows"]["a2c_cartpole"]["run"]
    calls = []
    monkeypatch.setattr(benchmark.Benchmark, "run_row",
                        lambda self, p, action, root: calls.append((p.row.name, action)))
    benchmark.run_benchmark(str(suite), out=str(out), rows="a2c*", data=str(data_dir), quiet=True, rerun=True)
    assert calls == []  # made by this code: nothing to run again
    record = out / "runs" / old / "a2c_cartpole_spec.json"
    spec = io.read_json(record)
    spec["meta"]["git_sha"] = "0" * 40  # as if made by an older commit
    io.write_json(record, spec)
    benchmark.run_benchmark(str(suite), out=str(out), rows="a2c*", data=str(data_dir), quiet=True)
    assert calls == []  # without --rerun a finished row is skipped whatever made it
    benchmark.run_benchmark(str(suite), out=str(out), rows="a2c*", data=str(data_dir), quiet=True, rerun=True)
    assert calls == [("a2c_cartpole", "start")]
    assert "finished in " + old + " at git 00000000; --rerun" in (out / "benchmark.log").read_text()
    assert (out / "runs" / old / "run.json").is_file()


def test_rerun_needs_to_know_this_codes_git_sha(suite, data_dir, monkeypatch):
    monkeypatch.setattr(benchmark, "git_info", lambda: ("unknown", None))
    with pytest.raises(LoopLabError, match="--rerun"):
        benchmark.run_benchmark(str(suite), out=str(data_dir / "out"), data=str(data_dir), quiet=True, rerun=True)
    assert not (data_dir / "out").exists()


def test_an_interrupted_row_made_by_other_code_starts_again_and_keeps_its_folder(suite, data_dir):
    proc = start(suite, data_dir)
    state_file = data_dir / "benchmark" / "tiny" / "benchmark_state.json"
    first = wait_checkpoint(state_file, "ppo_cartpole", data_dir, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    saved = first / "ppo_cartpole_spec.json"
    spec = io.read_json(saved)
    spec["meta"]["git_sha"] = "0" * 40  # as if made by an older commit
    io.write_json(saved, spec)
    proc = run_cli("benchmark", str(suite), "--rows", "ppo_cartpole", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"ppo_cartpole: {first.name} was made at git 00000000" in proc.stderr
    assert "the row starts again" in proc.stderr
    entry = io.read_json(state_file)["rows"]["ppo_cartpole"]
    assert entry["status"] == "finished" and entry["run"] != first.name
    assert first.is_dir() and io.read_json(first / "run.json")["status"] != "finished"


TWO_SESSIONS = """name: pair
rows:
  - env: CartPole-v1
    algorithm: A2C
    spec_file: a2c_cartpole.json
    spec_name: a2c_cartpole
    frames: 2000
    sessions: 2
    set: {meta.log_frequency: 100, meta.tensorboard: false, meta.random_seed: 5, env.num_envs: 2}
"""
STEADY = ["frame", "t", "epi", "opt_step", "total_reward", "total_reward_ma", "loss"]  # no clock times


def test_a_row_whose_machine_is_gone_continues_from_the_sessions_its_output_folder_kept(tmp_path, monkeypatch):
    """The output folder (in a repository) keeps each session of a running row as it ends; a new machine with
    no run folder puts them back, runs only the others, and the row ends as it would have without the stop."""
    suite_file = tmp_path / "pair.yaml"
    suite_file.write_text(TWO_SESSIONS)
    out, first, second = tmp_path / "out", tmp_path / "first", tmp_path / "second"
    monkeypatch.setattr(benchmark, "ARCHIVE_SECONDS", 0.05)
    benchmark.run_benchmark(str(suite_file), out=str(out), data=str(first), quiet=True)
    state_file = out / benchmark.STATE_FILE
    entry = io.read_json(state_file)["rows"]["a2c_cartpole"]
    assert entry["status"] == "finished" and entry["sessions_ended"] == [0, 1] and entry["last_seen"] > 0
    run = entry["run"]
    info = first / run / "info"
    df = {s: info / f"a2c_cartpole_t0_s{s}_session_df_train.csv" for s in (0, 1)}
    original = {s: df[s].read_bytes() for s in (0, 1)}
    metrics = io.read_json(first / run / "a2c_cartpole_t0_trial_metrics_scalar.json")

    # the moment the machine went: session 0 had ended, session 1 was at frame 600
    shutil.rmtree(out / "runs" / run)
    rows = pd.read_csv(df[1])
    io.write_csv(df[1], rows[rows["frame"] <= 600])
    io.write_json(first / run / "run.json", {**io.read_json(first / run / "run.json"), "status": "running"})
    t0 = time.time() - 100
    doc = io.read_json(state_file)
    doc["rows"]["a2c_cartpole"] = {"run": run, "fingerprint": entry["fingerprint"], "work": entry["work"],
                                   "started": entry["started"], "wall_time": 0.0, "status": "running",
                                   "error": None, "segment_started": t0}
    io.write_json(state_file, doc)
    suite, file = benchmark.load_suite(str(suite_file))
    planned = benchmark.plan(suite, file, [0], None, None)[0]
    state = benchmark.State(state_file, suite, first)
    entry = state.rows["a2c_cartpole"]
    benchmark.SessionArchiver(state, entry, planned.spec, benchmark.RunPaths(first / run, "a2c_cartpole"), out).once()
    kept = out / "runs" / run
    assert sorted(p.name for p in (kept / "info").iterdir()) == [
        "a2c_cartpole_t0_s0_session_df_train.csv", "a2c_cartpole_t0_s0_session_metrics_scalar_train.json",
        "a2c_cartpole_t0_s0_session_metrics_train.json"]
    assert (kept / "a2c_cartpole_spec.json").is_file() and not benchmark.table.archived(out, run)
    doc = io.read_json(state_file)["rows"]["a2c_cartpole"]
    assert doc["sessions_ended"] == [0] and doc["last_seen"] >= t0 + 100
    shutil.rmtree(first)
    record = benchmark.table.record(suite, suite.rows[0], doc, first, out)  # from the output folder alone
    assert record["sessions"] == 2 and record["frames"] == 2000 and record["total_reward_ma"] is None
    assert "| running (1 of 2 sessions ended) |" in benchmark.table.table_markdown([record])  # the machine is gone; the output folder is all there is

    proc = run_cli("benchmark", str(suite_file), "--out", str(out), data_dir=second)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{run}: its run folder is gone; 1 session(s) that ended are put back" in proc.stderr
    assert "resumes in" in proc.stderr
    info = second / run / "info"
    assert (info / df[0].name).read_bytes() == original[0]  # kept, not run again
    logged = benchmark.RunPaths(second / run, "a2c_cartpole").log_file(0, 0).read_text()
    assert "session a2c_cartpole_t0_s0: ended earlier at frame 2000; its results are kept" in logged
    again = pd.read_csv(info / df[1].name)
    pd.testing.assert_frame_equal(again[STEADY], pd.read_csv(pd.io.common.BytesIO(original[1]))[STEADY])
    assert io.read_json(second / run / "a2c_cartpole_t0_trial_metrics_scalar.json")["total_reward_ma"] == \
        pytest.approx(metrics["total_reward_ma"])
    entry = io.read_json(state_file)["rows"]["a2c_cartpole"]
    assert entry["status"] == "finished" and benchmark.table.archived(out, run)
    assert 100 <= entry["wall_time"] < 100 + (time.time() - t0)  # the lost segment ends at its last sign of life
    assert "| finished |" in (out / "benchmark.md").read_text()


def test_eta_prices_each_row_at_its_algorithms_speed(suite, data_dir):
    """A finished A2C row at 1 s per 100 frames and a PPO one at 1 s per 10 frames: rows left are priced at
    their own algorithm's rate, an algorithm with no finished row at the rate of all of them."""
    from looplab.spec.suite import load_suite

    s, file = load_suite(str(suite))
    bench = benchmark.Benchmark(s, file, data_dir, data_dir / "out", quiet=True, retry_failed=False)
    bench.state.rows = {"a2c_cartpole": {"status": "finished", "work": 3000, "wall_time": 30.0},
                        "ppo_cartpole": {"status": "finished", "work": 600, "wall_time": 60.0}}
    planned = benchmark.plan(s, file, [0, 1], None, None)  # ppo: 800 frames x 1 session; a2c: 3000 x 1
    assert bench.eta(planned) == "ETA 2m (from 2 finished row(s))"  # 800 x 0.1 + 3000 x 0.01 = 110 s
    bench.state.rows.pop("ppo_cartpole")
    assert bench.eta(planned[:1]) == "ETA 0m (from 1 finished row(s))"  # 800 x 0.01 = 8 s at A2C's rate
    assert bench.eta([]) == ""
