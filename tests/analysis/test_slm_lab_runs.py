"""`analyze`, `report` and `plot` on a run folder written by SLM Lab (its layout, no run.json)."""

from __future__ import annotations

import pandas as pd
import pytest

from looplab import io
from tests.analysis.checks import assert_png
from tests.analysis.slm_lab_run import NAME, write_slm_lab_run
from tests.conftest import run_cli


@pytest.fixture
def slm_run(tmp_path):
    return write_slm_lab_run(tmp_path / "data")


def test_analyze_recomputes_the_metrics_of_an_slm_lab_run(slm_run):
    dfs = [pd.read_csv(slm_run / "info" / f"{NAME}_t0_s{s}_session_df_train.csv") for s in (0, 1)]
    proc = run_cli("analyze", str(slm_run))
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = io.read_json(slm_run / f"{NAME}_t0_trial_metrics_scalar.json")
    assert m["frame"] == 4000 and m["num_sessions"] == 2
    assert m["total_reward_ma"] == pytest.approx(sum(df["total_reward"].mean() for df in dfs) / 2)
    assert m["total_reward_ma_ci_low"] <= m["total_reward_ma_iqm"] <= m["total_reward_ma_ci_high"]
    assert 0 < m["consistency"] <= 1
    for s in (0, 1):
        scalar = io.read_json(slm_run / "info" / f"{NAME}_t0_s{s}_session_metrics_scalar_train.json")
        assert scalar["strength"] == pytest.approx((dfs[s]["total_reward"] - m["random_baseline"]).mean())
        assert_png(slm_run / "graph" / f"{NAME}_t0_s{s}_session_graph_train_mean_returns_vs_frames.png")
    assert_png(slm_run / f"{NAME}_t0_trial_graph_mean_returns_vs_frames.png")
    page = (slm_run / "index.html").read_text()
    assert "PPO on CartPole-v1" in page and "8f1c6a1b0d2e" in page  # SLM Lab's saved git SHA


def test_report_and_plot_of_an_slm_lab_run(slm_run, tmp_path):
    proc = run_cli("report", str(slm_run))
    assert proc.returncode == 0 and proc.stdout.strip() == str(slm_run / "index.html"), proc.stderr[-2000:]
    page = (slm_run / "index.html").read_text()
    assert NAME in page and "PPO" in page and "consistency" in page
    proc = run_cli("plot", "-f", str(slm_run), "-o", str(tmp_path / "plots"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(p.suffix == ".png" for p in (tmp_path / "plots").iterdir())
