"""`looplab list`'s run table: a running run's progress read from its session dataframes' last rows, and
the modules the table and the Hub commands need, importable without torch, pandas or a plotting library."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from looplab.analysis import runs
from tests.conftest import ROOT

HEADER = "frame,t,epi,total_reward,total_reward_ma,loss\n"


def row(frame: int, ma: str) -> str:
    return f"{frame},{frame // 8},3,21.0,{ma},0.5\n"


def running_run(tmp_path, sessions: dict[int, str]):
    """A run folder whose status says running (no frame, no MA yet) with the given session dataframes."""
    root = tmp_path / "ppo_cartpole_2026_12_02_120000"
    (root / "info").mkdir(parents=True)
    (root / "run.json").write_text(json.dumps({"status": "running", "pid": 2 ** 22 + 7, "spec_name": "ppo_cartpole",
                                               "started": "2026-12-02 12:00:00", "env": "CartPole-v1"}))
    for s, text in sessions.items():
        (root / "info" / f"ppo_cartpole_t0_s{s}_session_df_train.csv").write_text(text)
    return root


def test_the_last_complete_row_of_a_session_dataframe(tmp_path):
    p = tmp_path / "df.csv"
    p.write_text(HEADER + row(1000, "20.5") + row(2000, "30.25"))
    assert runs._last_row(p) == {"frame": "2000", "t": "250", "epi": "3", "total_reward": "21.0",
                                 "total_reward_ma": "30.25", "loss": "0.5"}
    p.write_text(HEADER + row(1000, "20.5") + "2000,250,3")  # a row being written: the one before it
    assert runs._last_row(p)["frame"] == "1000"
    p.write_text(HEADER + row(1000, "20.5")[:-1])  # one row, no final newline
    assert runs._last_row(p)["frame"] == "1000"
    p.write_text(HEADER)
    assert runs._last_row(p) == {}
    assert runs._last_row(tmp_path / "missing.csv") == {}


def test_a_long_dataframe_is_read_from_its_end(tmp_path):
    p = tmp_path / "df.csv"
    p.write_text(HEADER + "".join(row(f, f"{f / 100:.2f}") for f in range(1000, 5_001_000, 1000)))
    assert p.stat().st_size > 65536 * 2
    assert runs._last_row(p)["frame"] == "5000000" and runs._last_row(p)["total_reward_ma"] == "50000.00"


def test_a_running_runs_row_shows_the_furthest_frame_and_the_mean_latest_ma(tmp_path):
    root = running_run(tmp_path, {0: HEADER + row(1000, "10.0") + row(2000, "20.0"),
                                  1: HEADER + row(1000, "40.0"),
                                  2: HEADER + row(3000, "")})  # no MA yet: counted for its frame only
    r = runs.run_row(root)
    assert (r["frames"], r["total_reward_ma"], r["status"]) == (3000, 30.0, "interrupted")
    assert runs.list_runs(None, str(tmp_path))[0]["name"] == root.name


@pytest.mark.parametrize("module", ["looplab.analysis.runs", "looplab.hub", "looplab.analysis.plotly_js"])
def test_the_run_table_and_the_hub_import_no_heavy_library(module):
    code = (f"import sys, {module}; heavy = {{'torch', 'pandas', 'matplotlib', 'plotly'}} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout
