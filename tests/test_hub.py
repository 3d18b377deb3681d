"""`looplab push / pull / list --remote` against a local stand-in for the Hub (tests/hub_server.py), reached
over HTTP by huggingface_hub itself through `HF_ENDPOINT`: a real run round-trips byte for byte, the
dataset card lists it, a pulled run works like a local one, and every fault is one line, exit code 1,
no half-written run folder and an untouched local run. The token is never written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from looplab import io
from tests.analysis.slm_lab_run import write_slm_lab_run
from tests.conftest import SLM_SPECS, only_run, run_cli
from tests.experiment.test_resume import SECRET
from tests.hub_server import HubServer, run_cli_short_retries

SPEC = str(SLM_SPECS / "benchmark" / "ppo" / "ppo_cartpole.json")
SETS = ["--set", "env.max_frame=1000", "--set", "meta.max_session=2", "--set", "meta.log_frequency=250",
        "--set", "agent.algorithm.time_horizon=64", "--set", "meta.tensorboard=false"]
REPO = "lab/runs"
LEFT_OUT = ("_optim.pt", "_ckpt.pt")  # optimizer states and the resume checkpoints holding them


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    server = HubServer(tmp_path_factory.mktemp("hub"), token=SECRET).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub_env(hub, tmp_path_factory) -> dict:
    """The environment of every CLI call: the local Hub, its token, a private HF_HOME (no stored login)."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_REPO"):
            mp.delenv(var, raising=False)
        yield {"HF_ENDPOINT": hub.url, "HF_TOKEN": SECRET, "HF_HOME": str(tmp_path_factory.mktemp("hf_home")),
               "HF_HUB_DISABLE_TELEMETRY": "1", "HF_REPO": REPO}


@pytest.fixture(autouse=True)
def _healthy(hub):
    hub.heal()
    yield
    hub.heal()


@pytest.fixture(scope="module")
def run(tmp_path_factory, hub_env) -> Path:
    """A real trial: PPO on CartPole, 2 sessions x 1000 frames."""
    data = tmp_path_factory.mktemp("local")
    run_cli("run", SPEC, "ppo_cartpole", "train", *SETS, "-q", data_dir=data, env=hub_env, check=True)
    return only_run(data)


@pytest.fixture(scope="module")
def pushed(run, hub_env) -> str:
    proc = run_cli("push", str(run), env=hub_env, check=True)
    assert f"pushed {run.name} to {REPO}" in proc.stdout
    return proc.stdout


@pytest.fixture(scope="module")
def pulled(pushed, run, hub_env, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("pulled")
    proc = run_cli("pull", run.name, data_dir=data, env=hub_env, check=True)
    assert f"pulled {data / run.name}" in proc.stdout
    return data / run.name


def files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def state(root: Path) -> dict[str, tuple[str, int]]:
    """Content and modification time of every file: what 'untouched' means."""
    return {k: (v, (root / k).stat().st_mtime_ns) for k, v in files(root).items()}


# ---- the round trip -------------------------------------------------------------------------------
def test_push_list_pull_round_trips_the_run_byte_for_byte(run, pulled, pushed, hub, hub_env):
    local = {k: v for k, v in files(run).items() if not k.endswith(LEFT_OUT)}
    assert any(k.endswith("_optim.pt") for k in files(run)) and any(k.endswith("_ckpt.pt") for k in files(run))
    assert files(pulled) == local  # same paths, same bytes; nothing else (no download metadata)
    stored = files(hub.repo("dataset", REPO).files / "data" / run.name)
    assert stored == local
    assert f"{len(local)} files" in pushed
    # no temporary folder left behind; the pages' plotly.js beside the run, as a local run has it
    assert sorted(p.name for p in pulled.parent.iterdir()) == sorted([run.name, *[
        p.name for p in run.parent.glob("plotly-*.js")]])
    assert list(pulled.parent.glob("plotly-*.js")), "a pulled run's pages find plotly.js in the data folder"

    proc = run_cli("list", "--remote", env=hub_env, check=True)
    line = next(ln for ln in proc.stdout.splitlines() if run.name in ln)
    status = io.read_json(run / "run.json")
    for cell in ("CartPole-v1", "PPO", "1,000", f"{status['total_reward_ma']:,.4g}", "finished"):
        assert cell in line, (cell, line)
    assert run_cli("list", "--remote", "no_such_spec", env=hub_env, check=True).stdout.startswith("no runs")


def test_the_dataset_card_lists_every_pushed_run(pushed, run, hub, hub_env, tmp_path):
    repo = hub.repo("dataset", REPO)
    card = repo.read("README.md").decode()
    assert card.startswith("---\n") and "viewer: false" in card
    row = next(ln for ln in card.splitlines() if f"`{run.name}`" in ln)
    ma = io.read_json(run / "run.json")["total_reward_ma"]
    for cell in ("CartPole-v1", "PPO", "1,000", f"{ma:,.4g}", f"(data/{run.name}/index.html)"):
        assert cell in row, (cell, row)
    # a folder put there by other means (SLM Lab's own sync) is listed at the next push
    other = repo.files / "data" / "dqn_cartpole_2024_01_02_030405"
    other.mkdir()
    (other / "dqn_cartpole_spec.json").write_text("{}")
    # a second push (a run folder written by SLM Lab) adds its row and keeps the first
    slm = write_slm_lab_run(tmp_path)
    run_cli("push", str(slm), env=hub_env, check=True)
    card = repo.read("README.md").decode()
    assert f"`{run.name}`" in card and f"`{slm.name}` | CartPole-v1 | PPO | 4,000 |" in card
    assert "`dqn_cartpole_2024_01_02_030405` | – | – | – | – | – |" in card
    index = json.loads(repo.read("runs.json"))["runs"]
    assert set(index) >= {run.name, slm.name} and index[run.name]["algorithm"] == "PPO"
    proc = run_cli("list", "--remote", "2025_11", env=hub_env, check=True)
    assert slm.name in proc.stdout and run.name not in proc.stdout


def test_with_optim_uploads_optimizer_states(run, hub, hub_env):
    run_cli("push", str(run), "--repo", "lab/full", "--private", "--with-optim", env=hub_env, check=True)
    repo = hub.repo("dataset", "lab/full")
    assert repo.meta["private"]
    assert files(repo.files / "data" / run.name) == files(run)


def test_pull_skips_a_run_already_there_unless_forced(pulled, run, hub_env):
    data = pulled.parent
    (pulled / "run.json").write_text("{}")
    proc = run_cli("pull", f"*{run.name[-11:]}", data_dir=data, env=hub_env, check=True)  # a glob
    assert "skipped" in proc.stdout and (pulled / "run.json").read_text() == "{}"
    proc = run_cli("pull", run.name, "--force", data_dir=data, env=hub_env, check=True)
    assert f"pulled {pulled}" in proc.stdout
    assert (pulled / "run.json").read_bytes() == (run / "run.json").read_bytes()
    assert [p.name for p in data.iterdir() if p.is_dir()] == [run.name]  # beside it only the pages' plotly.js


# ---- a pulled run works like a local one ------------------------------------------------------------
def test_analyze_on_a_pulled_run_recomputes_the_same_metrics(pulled, run, hub_env, tmp_path):
    copy = tmp_path / run.name
    shutil.copytree(pulled, copy)
    before = io.read_json(run / "ppo_cartpole_t0_trial_metrics_scalar.json")
    run_cli("analyze", str(copy), env=hub_env, check=True)
    after = io.read_json(copy / "ppo_cartpole_t0_trial_metrics_scalar.json")
    assert set(after) == set(before)
    for k, v in before.items():
        assert after[k] == pytest.approx(v, rel=1e-9, nan_ok=True), k
    run_cli("report", str(copy), env=hub_env, check=True)
    out = tmp_path / "plots"
    proc = run_cli("plot", "-f", f"{copy},{run}", "-o", str(out), env=hub_env, check=True)
    assert any(p.suffix == ".png" for p in out.iterdir()), proc.stdout


def test_enjoy_replays_the_best_checkpoint_of_a_pulled_run(pulled, hub_env, tmp_path):
    data = tmp_path / "data"
    proc = run_cli("run", SPEC, "ppo_cartpole", f"enjoy@{pulled}", "--episodes", "1", "-q", data_dir=data,
                   env=hub_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    replay = only_run(data)
    assert io.read_json(replay / "run.json")["source"] == str(pulled)
    assert (replay / "info" / "ppo_cartpole_t0_s0_session_df_enjoy.csv").exists()


def test_train_at_a_pulled_run_refuses_other_code_or_missing_checkpoints(pulled, hub_env, tmp_path):
    copy = tmp_path / pulled.name
    shutil.copytree(pulled, copy)
    # as if pushed while its first session was still running: its rows so far, no metrics yet (a session
    # that ended needs no checkpoint to be kept on resume; one that did not, does)
    df = copy / "info" / "ppo_cartpole_t0_s0_session_df_train.csv"
    df.write_text("".join(df.read_text().splitlines(keepends=True)[:3]))
    (copy / "info" / "ppo_cartpole_t0_s0_session_metrics_scalar_train.json").unlink()
    proc = run_cli("run", SPEC, "ppo_cartpole", f"train@{copy}", "-q", env=hub_env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no resume checkpoint ppo_cartpole_t0_s0_ckpt.pt" in proc.stderr and "--with-optim" in proc.stderr
    spec = io.read_json(copy / "ppo_cartpole_spec.json")
    other = "0123456789abcdef0123456789abcdef01234567"
    spec["meta"]["git_sha"] = other
    (copy / "ppo_cartpole_spec.json").write_text(json.dumps(spec))
    before = state(copy)
    proc = run_cli("run", SPEC, "ppo_cartpole", f"train@{copy}", "-q", env=hub_env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"git checkout {other}" in proc.stderr and "0123456789ab" in proc.stderr
    assert state(copy) == before


# ---- push at the end of a run ---------------------------------------------------------------------------
def test_meta_push_uploads_the_run_after_its_report(hub, hub_env, tmp_path):
    data = tmp_path / "data"
    proc = run_cli("run", SPEC, "ppo_cartpole", "dev", "--set", "env.max_frame=200", "--set", "meta.log_frequency=100",
                   "--set", "meta.push=true", "--set", "meta.tensorboard=false", "-q", data_dir=data,
                   env={**hub_env, "HF_REPO": "lab/auto"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = only_run(data)
    assert f"pushed {run.name} to lab/auto" in proc.stdout
    assert files(hub.repo("dataset", "lab/auto").files / "data" / run.name) == {
        k: v for k, v in files(run).items() if not k.endswith(LEFT_OUT)}
    assert (run / "index.html").exists()


def test_push_flag_without_a_token_refuses_before_the_run(hub_env, tmp_path):
    data = tmp_path / "data"
    proc = run_cli("run", SPEC, "ppo_cartpole", "dev", "--push", "-q", data_dir=data, env={**hub_env, "HF_TOKEN": ""})
    assert proc.returncode == 1 and "no HuggingFace token" in proc.stderr and "Traceback" not in proc.stderr
    assert not data.exists() or not any(data.iterdir())
    proc = run_cli("run", SPEC, "ppo_cartpole", "dev", "--push", "-q", data_dir=data, env={**hub_env, "HF_REPO": ""})
    assert proc.returncode == 2 and "--repo OWNER/NAME or set HF_REPO" in proc.stderr


# ---- faults: one line, exit 1, nothing half-written, the local run untouched --------------------------
def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


PUSH_FAULTS = {
    "wrong token": ({"HF_TOKEN": "hf_wrong_token_0000000000"}, None, "the Hub refused the token (401"),
    "no token": ({"HF_TOKEN": ""}, None, "no HuggingFace token"),
    "missing repo": ({}, (r"POST /api/datasets/.*/preupload/", 404), f"repo {REPO} not found"),
    "rate limit": ({}, ("", 429), "rate limited by the Hub (429"),
    "dropped mid-upload": ({}, (r"POST /api/datasets/.*/commit/", "drop"), "connection to the Hub was lost"),
    "no network": ({"HF_ENDPOINT": None}, None, "cannot reach the Hub at http://127.0.0.1:"),
}


@pytest.mark.parametrize("fault", list(PUSH_FAULTS))
def test_a_failed_push_is_one_line_and_leaves_the_run_untouched(fault, run, hub, hub_env):
    env, failure, expected = PUSH_FAULTS[fault]
    env = {k: (closed_port() if v is None else v) for k, v in env.items()}
    if failure:
        hub.fail(*failure)
    head = hub.repo("dataset", REPO).head if hub.repo("dataset", REPO) else None
    before = state(run)
    proc = run_cli_short_retries("push", str(run), env={**hub_env, **env})
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"looplab: error: push {run.name}: "), proc.stderr
    assert expected in lines[0], lines[0]
    assert state(run) == before
    if head is not None:
        assert hub.repo("dataset", REPO).head == head  # nothing committed


PULL_FAULTS = {
    "wrong token": ({"HF_TOKEN": "hf_wrong_token_0000000000"}, None, "the Hub refused the token (401"),
    "missing repo": ({"HF_REPO": "lab/not_there"}, None, "repo lab/not_there not found"),
    "rate limit mid-download": ({}, (r"GET /datasets/.*/resolve/.*session_df", 429), "rate limited by the Hub (429"),
    "dropped mid-download": ({}, (r"GET /datasets/.*/resolve/.*_t0_s1_session_df", "drop"),
                             "connection to the Hub was lost"),
    "no network": ({"HF_ENDPOINT": None}, None, "cannot reach the Hub at http://127.0.0.1:"),
}


@pytest.mark.parametrize("fault", list(PULL_FAULTS))
def test_a_failed_pull_is_one_line_and_leaves_no_run_folder(fault, pushed, run, hub, hub_env, tmp_path):
    env, failure, expected = PULL_FAULTS[fault]
    env = {k: (closed_port() if v is None else v) for k, v in env.items()}
    if failure:
        hub.fail(*failure)
    data = tmp_path / "data"
    proc = run_cli_short_retries("pull", run.name, "--data-dir", str(data), env={**hub_env, **env})
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("looplab: error: pull "), proc.stderr
    assert run.name in lines[0] and expected in lines[0], lines[0]
    assert not data.exists() or list(data.iterdir()) == []  # no run folder, no temporary folder


def test_list_remote_of_a_missing_repo(hub_env):
    proc = run_cli_short_retries("list", "--remote", "--repo", "lab/not_there", env=hub_env)
    assert proc.returncode == 1 and proc.stderr.strip() == (
        f"looplab: error: list --remote lab/not_there: repo lab/not_there not found on {hub_env['HF_ENDPOINT']} "
        "(or it is private and the token cannot see it)")
    proc = run_cli_short_retries("list", "--remote", "--repo", "not-a-repo", env=hub_env)
    assert proc.returncode == 2 and "is not OWNER/NAME" in proc.stderr


# ---- the token is written nowhere ----------------------------------------------------------------------
def test_the_token_is_never_written(pulled, run, hub, hub_env, tmp_path):
    """After the pushes and pulls above (they ran with HF_TOKEN set): no file anywhere holds the token."""
    assert SECRET not in (run.parent / run.name / "ppo_cartpole_spec.json").read_text()
    for root in (run.parent, pulled.parent, hub.root, Path(hub_env["HF_HOME"])):
        for f in root.rglob("*"):
            if f.is_file():
                assert SECRET.encode() not in f.read_bytes(), f
    proc = run_cli("push", str(run), env={**hub_env, "HF_REPO": "lab/secret-check"}, check=True)
    assert SECRET not in proc.stdout + proc.stderr
    proc = run_cli_short_retries("pull", run.name, "--repo", "lab/none", "--data-dir", str(tmp_path), env=hub_env)
    assert proc.returncode == 1 and SECRET not in proc.stdout + proc.stderr
    assert os.environ.get("HF_TOKEN") != SECRET
