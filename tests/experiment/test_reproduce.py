"""`looplab reproduce RUN_DIR`: a fresh run re-run from its saved spec and seeds is reproduced exactly; one
changed saved seed is reported as a difference with a non-zero exit; the comparison rules on small frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from looplab import io
from looplab.experiment.reproduce import compare, first_difference
from tests.conftest import SLM_SPECS, only_run, run_cli

SPEC = str(SLM_SPECS / "benchmark" / "ppo" / "ppo_cartpole.json")
SETS = ["--set", "env.max_frame=1000", "--set", "meta.max_session=2", "--set", "meta.log_frequency=250",
        "--set", "agent.algorithm.time_horizon=64", "--set", "meta.tensorboard=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("original")
    run_cli("run", SPEC, "ppo_cartpole", "train", *SETS, "-q", data_dir=data, check=True)
    return only_run(data)


def test_a_fresh_run_is_reproduced_exactly(run, tmp_path):
    data = tmp_path / "data"
    proc = run_cli("reproduce", str(run), "-q", data_dir=data)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "reproduced exactly: 2 session dataframe(s) identical (time columns fps, wall_t aside)" in proc.stdout
    new = only_run(data)
    assert f"-> {new}" in proc.stdout
    assert io.read_json(new / "run.json")["reproduces"] == str(run)
    saved, again = (io.read_json(r / "ppo_cartpole_spec.json")["meta"] for r in (run, new))
    assert again["session_seeds"] == saved["session_seeds"] and again["machine"] == saved["machine"]
    for s in (0, 1):  # opt_step > 0: the agents trained, and identically
        a, b = (pd.read_csv(r / "info" / f"ppo_cartpole_t0_s{s}_session_df_train.csv") for r in (run, new))
        assert a["opt_step"].iloc[-1] > 0
        pd.testing.assert_frame_equal(a.drop(columns=["wall_t", "fps"]), b.drop(columns=["wall_t", "fps"]))


def test_a_changed_seed_is_reported_and_fails(run, tmp_path):
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    spec = io.read_json(copy / "ppo_cartpole_spec.json")
    spec["meta"]["session_seeds"][0] += 1
    (copy / "ppo_cartpole_spec.json").write_text(json.dumps(spec))
    data = tmp_path / "data"
    proc = run_cli("reproduce", str(copy), "--sessions", "1", "--frames", "500", "-q", data_dir=data)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert "(1 session(s), frames <= 500)" in proc.stdout
    assert "not identical: session 0, frame 252" in proc.stdout
    assert "original MA" in proc.stdout and "NOT reproduced" in proc.stdout
    new = only_run(data)
    df = pd.read_csv(new / "info" / "ppo_cartpole_t0_s0_session_df_train.csv")
    assert df["frame"].iloc[-1] == 500 and len(df) == 2  # stopped at --frames
    assert io.read_json(new / "ppo_cartpole_spec.json")["env"]["max_frame"] == 1000  # schedules saw the full run


def test_bad_options_are_usage_errors(run, tmp_path):
    for args, needle in ((["--sessions", "3"], "--sessions must be between 1 and 2"),
                         (["--frames", "5000"], "--frames must be between 1 and the run's max_frame 1000")):
        proc = run_cli("reproduce", str(run), *args, data_dir=tmp_path)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())


# ---- the comparison ------------------------------------------------------------------------------------
META = {"git_sha": "a" * 40, "git_dirty": False, "versions": {"torch": "2.13.0"}, "machine": {"arch": "x86_64"}}


def frame(returns: list[float], wall: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({"frame": [100 * (i + 1) for i in range(len(returns))], "total_reward": returns,
                         "total_reward_ma": pd.Series(returns).expanding().mean(), "wall_t": wall, "fps": 100 / wall})


def test_time_columns_aside_identical_frames_are_exact():
    olds = [frame([1.0, 2.0]), frame([3.0, 4.0])]
    news = [frame([1.0, 2.0], wall=7.0), frame([3.0, 4.0], wall=9.0)]
    assert first_difference(olds, news) is None
    text, ok = compare(olds, news, META, {**META, "git_sha": "b" * 40})
    assert ok and "reproduced exactly" in text and "code: different" in text


def test_a_difference_on_the_same_code_and_machine_fails():
    olds, news = [frame([1.0, 2.0])], [frame([1.0, 2.5])]
    assert first_difference(olds, news) == "session 0, frame 200, total_reward: 2.0 (original) vs 2.5 (new)"
    text, ok = compare(olds, news, META, META)
    assert not ok and "NOT reproduced: the same code" in text


def test_elsewhere_the_new_trial_ma_must_lie_in_the_original_ci():
    olds = [frame([10.0, 20.0]), frame([10.0, 30.0]), frame([10.0, 40.0]), frame([10.0, 50.0])]  # final MAs 15..30
    other = {**META, "machine": {"arch": "aarch64"}}
    text, ok = compare(olds, [frame([10.0, 31.0]) for _ in range(4)], META, other)  # mean 20.5: inside
    assert ok and "new trial MA inside" in text and "machine: different" in text
    assert "s3" in text and "22.5" in text  # per session: original final MA, new final MA
    text, ok = compare(olds, [frame([10.0, 80.0]) for _ in range(4)], META, other)  # mean 45: outside
    assert not ok and "OUTSIDE" in text and text.endswith("outside the original's 95% CI")


def test_a_saved_spec_run_again_runs_its_own_session_seeds(run, tmp_path):
    """`meta.session_seeds` means what it says: the saved spec of a run, run again with `looplab run`, runs the
    same sessions (here the second alone, by giving its seed first)."""
    saved = io.read_json(run / "ppo_cartpole_spec.json")
    seeds = saved["meta"]["session_seeds"]
    spec = tmp_path / "again.json"
    saved["meta"]["session_seeds"] = [seeds[1], seeds[0]]
    spec.write_text(json.dumps({"ppo_cartpole": saved}))
    data = tmp_path / "data"
    proc = run_cli("run", str(spec), "ppo_cartpole", "train", "-q", data_dir=data)
    assert proc.returncode == 0, proc.stderr[-2000:]
    new = only_run(data)
    assert io.read_json(new / "ppo_cartpole_spec.json")["meta"]["session_seeds"] == [seeds[1], seeds[0]]
    first, second = (pd.read_csv(r / "info" / f"ppo_cartpole_t0_s{s}_session_df_train.csv").drop(
        columns=["wall_t", "fps"]) for r, s in ((new, 0), (run, 1)))
    pd.testing.assert_frame_equal(first, second, check_exact=True)


def test_fewer_session_seeds_than_sessions_is_one_line_naming_the_key(tmp_path):
    proc = run_cli("run", SPEC, "ppo_cartpole", "train", *SETS, "--set", "meta.session_seeds=[5]",
                   data_dir=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "meta.session_seeds" in proc.stderr and "1 seed(s) for max_session 2" in proc.stderr
    assert not list(tmp_path.iterdir())
