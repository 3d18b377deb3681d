"""The analysis commands on one small real run (2 sessions x 1000 CartPole frames, made once here):
the report `looplab run` writes, `report`, `analyze`, `list`, `plot`, TensorBoard events, and a real
browser opening the report from disk.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from looplab.analysis import commands, runs
from looplab.errors import LoopLabError
from tests.analysis.checks import assert_png, plotly_figures
from tests.conftest import SLM_SPECS, only_run, run_cli

SPEC = str(SLM_SPECS / "benchmark" / "ppo" / "ppo_cartpole.json")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    data = tmp_path_factory.mktemp("data")
    cache = tmp_path_factory.mktemp("cache")
    proc = run_cli("run", SPEC, "ppo_cartpole", "train", "--set", "env.max_frame=1000", "--set", "meta.max_session=2",
                   "--set", "meta.log_frequency=250", "--set", "agent.algorithm.time_horizon=64", "-q",
                   data_dir=data, env={"LOOPLAB_CACHE_DIR": str(cache)}, check=True)
    return only_run(data), proc


def test_run_writes_the_report_and_prints_its_path(run):
    root, proc = run
    assert f"report: {root / 'index.html'}" in proc.stdout
    figs = plotly_figures(root / "index.html")
    assert len(figs) == 3  # the trial graph and one per session
    text = (root / "index.html").read_text()
    for needle in ("ppo_cartpole", "git SHA", "session seeds", "total_reward_ma_iqm", "consistency",
                   "model/ppo_cartpole_t0_s0_ckpt-best_net_model.pt", "torch", "time_horizon&quot;: 64"):
        assert needle in text, needle


def test_graph_files_of_the_run(run):
    root, _ = run
    for s in (0, 1):
        for key in ("mean_returns", "mean_returns_ma", "loss", "lr", "entropy", "clip_eps", "fps"):
            assert_png(root / "graph" / f"ppo_cartpole_t0_s{s}_session_graph_train_{key}_vs_frames.png")
        plotly_figures(root / "graph" / f"ppo_cartpole_t0_s{s}_session_graph_train.html")
    for key in ("mean_returns", "mean_returns_ma", "strength", "strength_ma"):
        assert_png(root / f"ppo_cartpole_t0_trial_graph_{key}_vs_frames.png")
    plotly_figures(root / "ppo_cartpole_t0_trial_graph.html")


def test_tensorboard_events_read_back(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, _ = run
    for s in (0, 1):
        ea = EventAccumulator(str(root / "log" / f"ppo_cartpole_t0_s{s}"),
                              size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
        ea.Reload()
        tags = ea.Tags()
        for tag in ("total_reward", "total_reward_ma", "loss", "lr", "fps", "wall_t", "frame", "opt_step"):
            assert tag in tags["scalars"], tag
        frames = pd.read_csv(root / "info" / f"ppo_cartpole_t0_s{s}_session_df_train.csv")["frame"].tolist()
        assert [e.step for e in ea.Scalars("total_reward")] == frames and len(frames) == 4  # one per checkpoint
        hist = set(tags["histograms"])
        for prefix in ("net/", "critic_net/", "net.grad/", "critic_net.grad/"):  # weights, biases, gradients
            assert any(h.startswith(prefix) and h.endswith("weight") for h in hist), (prefix, hist)
            assert any(h.startswith(prefix) and h.endswith("bias") for h in hist), (prefix, hist)
        assert "action" in hist
        # histograms every 10th log checkpoint and at the last frame: here only at the last, with every action
        assert [e.step for e in ea.Histograms("action")] == [frames[-1]]
        action = ea.Histograms("action")[-1].histogram_value
        assert action.num == frames[-1]
        assert action.min == 0 and action.max == 1  # CartPole's two actions
        assert "spec/text_summary" in tags["tensors"]


def test_report_command_and_bad_run_dirs(run, tmp_path):
    root, _ = run
    (root / "index.html").unlink()
    assert commands.report(root) == root / "index.html"
    assert len(plotly_figures(root / "index.html")) == 3
    with pytest.raises(LoopLabError, match="no such run folder"):
        commands.report(tmp_path / "nope")
    with pytest.raises(LoopLabError, match="not a run folder"):
        commands.report(tmp_path)
    proc = run_cli("report", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "looplab: error:" in proc.stderr


def test_analyze_recomputes_metrics_and_graphs_from_files(run):
    root, _ = run
    metrics = root / "ppo_cartpole_t0_trial_metrics_scalar.json"
    before = metrics.read_text()
    session_json = root / "info" / "ppo_cartpole_t0_s1_session_metrics_scalar_train.json"
    png = root / "ppo_cartpole_t0_trial_graph_strength_vs_frames.png"
    session_json.unlink()
    png.unlink()
    metrics.unlink()
    assert commands.analyze(root) == root / "index.html"
    assert session_json.exists() and metrics.exists()
    assert_png(png)
    assert metrics.read_text() == before  # same files in, same numbers out


def test_list_command(run):
    root, _ = run
    rows = runs.list_runs(None, str(root.parent))
    assert len(rows) == 1
    r = rows[0]
    assert (r["name"], r["env"], r["algorithm"], r["frames"], r["status"]) == (
        root.name, "CartPole-v1", "PPO", 1000, "finished")
    assert r["total_reward_ma"] is not None and r["wall time"] > 0
    assert runs.list_runs("no_such_spec", str(root.parent)) == []
    proc = run_cli("list", "cartpole", "--data-dir", str(root.parent))
    assert proc.returncode == 0 and root.name in proc.stdout and "finished" in proc.stdout


def test_list_marks_a_dead_running_run_interrupted():
    assert runs.run_state({"status": "running", "pid": 2 ** 22 + 12345}) == "interrupted"
    assert runs.run_state({"status": "running", "pid": os.getpid()}) == "running"


def test_plot_command_compares_runs(run, tmp_path):
    root, _ = run
    copy = tmp_path / f"{root.name}_copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("*.html", "model", "log"))
    written = commands.plot([str(root), str(copy)], "PPO vs PPO", str(tmp_path / "plots"))
    names = sorted(p.name for p in written)
    assert names == ["PPO_vs_PPO_multi_trial_graph.html", "PPO_vs_PPO_multi_trial_graph_mean_returns_ma_vs_frames.png",
                     "PPO_vs_PPO_multi_trial_graph_mean_returns_vs_frames.png"]
    for p in written:
        if p.suffix == ".png":
            assert_png(p)
    data = plotly_figures(tmp_path / "plots" / "PPO_vs_PPO_multi_trial_graph.html")[0]["data"]
    labels = {t.get("name") for t in data}
    assert "ppo_cartpole" in labels and any(str(n).startswith("ppo_cartpole (") for n in labels)  # unique labels
    with pytest.raises(LoopLabError):
        commands.plot([str(tmp_path / "missing")])


def test_report_renders_in_a_real_browser(run, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not installed (make browser installs it): the report was not opened in a browser")
    root, _ = run
    url = (root / "index.html").as_uri()

    def browse(*args: str) -> subprocess.Popen:
        profile = tempfile.mkdtemp(dir=tmp_path)
        return subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args, url],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    shot = tmp_path / "report.png"
    procs = [browse("--dump-dom"), browse(f"--screenshot={shot}", "--window-size=1300,2000")]
    dom = procs[0].communicate(timeout=90)[0]
    procs[1].wait(timeout=90)
    graphs = re.split(r'<div id="graph-\d+"', dom)[1:]
    assert len(graphs) == 3, "the report's graph divs are missing"
    for g in graphs:
        assert "js-plotly-plot" in g.split(">", 1)[0] and 'class="main-svg"' in g, "a plotly graph did not render"
    assert_png(shot)
