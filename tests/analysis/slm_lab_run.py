"""A small run folder as SLM Lab v5 writes it (reference §4 and §5): no run.json, its spec with SLM Lab's
runtime meta keys, session dataframes in its column order with `epi` empty (vector envs), its metrics
JSON files (`{scalar, local}`), PNG-less graph/ and a loguru-style log. Built by hand, from the layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import SLM_SPECS

NAME, TS = "ppo_cartpole", "2025_11_25_093345"
SLM_COLUMNS = ["total_reward", "total_reward_ma", "loss", "fps", "frame", "wall_t", "t", "epi", "opt_step", "lr",
               "clip_eps", "entropy"]


def session_df(session: int, rows: int = 8, log_frequency: int = 500, num_envs: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(session)
    frame = np.arange(1, rows + 1) * log_frequency
    total_reward = np.round(22.0 + frame / 40 + rng.normal(0, 3, rows), 2)
    df = pd.DataFrame({
        "total_reward": total_reward,
        "total_reward_ma": np.round(pd.Series(total_reward).expanding().mean().to_numpy(), 4),
        "loss": np.round(rng.uniform(0.01, 0.5, rows), 5),
        "fps": np.round(frame / np.arange(1, rows + 1), 1),
        "frame": frame,
        "wall_t": np.arange(1, rows + 1),
        "t": frame // num_envs,
        "epi": np.nan,
        "opt_step": frame // 128 * 4,
        "lr": np.round(np.linspace(3e-4, 1e-4, rows), 6),
        "clip_eps": 0.2,
        "entropy": np.round(np.linspace(0.69, 0.5, rows), 4),
    })
    return df.astype("float32")[SLM_COLUMNS]


def write_slm_lab_run(data: Path, sessions: int = 2) -> Path:
    """`data/ppo_cartpole_2025_11_25_093345/` as SLM Lab's `train` mode leaves it."""
    root = data / f"{NAME}_{TS}"
    for sub in ("info", "graph", "log", "model"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    spec = json.loads((SLM_SPECS / "benchmark" / "ppo" / "ppo_cartpole.json").read_text())[NAME]
    spec["name"] = NAME
    prepath = f"data/{NAME}_{TS}/{NAME}_t0"
    spec["meta"].update({
        "rigorous_eval": 0, "experiment": 0, "trial": 0, "session": -1, "cuda_offset": 0, "resume": False,
        "experiment_ts": TS, "prepath": prepath, "git_sha": "8f1c6a1b0d2e3f405162738495a6b7c8d9e0f1a2",
        "random_seed": None, "predir": f"data/{NAME}_{TS}", "graph_prepath": prepath.replace("/ppo", "/graph/ppo"),
        "info_prepath": prepath.replace("/ppo", "/info/ppo"), "log_prepath": prepath.replace("/ppo", "/log/ppo"),
        "model_prepath": prepath.replace("/ppo", "/model/ppo")})
    (root / f"{NAME}_spec.json").write_text(json.dumps({**spec, "meta": {**spec["meta"], "trial": -1}}, indent=2))
    (root / f"{NAME}_t0_spec.json").write_text(json.dumps(spec, indent=2))
    scalars = []
    for s in range(sessions):
        df = session_df(s)
        df.to_csv(root / "info" / f"{NAME}_t0_s{s}_session_df_train.csv", index=False)
        scalar = {"total_reward_ma": float(df["total_reward"].mean()), "strength": float(df["total_reward"].mean() - 22.97),
                  "max_strength": float(df["total_reward"].max() - 22.97),
                  "final_strength": float(df["total_reward"].iloc[-1] - 22.97),
                  "sample_efficiency": 0.0001, "training_efficiency": 0.002, "stability": 0.9}
        scalars.append(scalar)
        local = {"mean_returns": df["total_reward"].tolist(), "frames": df["frame"].tolist(),
                 "opt_steps": df["opt_step"].tolist()}
        (root / "info" / f"{NAME}_t0_s{s}_session_metrics_train.json").write_text(
            json.dumps({"scalar": scalar, "local": local}, indent=2))
        (root / "info" / f"{NAME}_t0_s{s}_session_metrics_scalar_train.json").write_text(json.dumps(scalar, indent=2))
        (root / "log" / f"{NAME}_t0_s{s}.log").write_text(
            f"2025-11-25 09:33:46 | INFO | PID:{4242 + s} | slm_lab.experiment.control:__init__ | session start\n")
    trial = {"frame": 4000.0, **{k: float(np.mean([sc[k] for sc in scalars])) for k in scalars[0]}, "consistency": 0.8}
    (root / "info" / f"{NAME}_t0_trial_metrics_scalar.json").write_text(json.dumps(trial, indent=2))
    (root / "info" / f"{NAME}_t0_trial_metrics.json").write_text(json.dumps({"scalar": trial, "local": {}}, indent=2))
    (root / f"{NAME}_t0_trial_metrics_scalar.json").write_text(json.dumps(trial, indent=2))
    return root
