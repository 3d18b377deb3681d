"""Session and trial graphs as PNG (matplotlib, headless), drawn from the run folder's files alone."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from looplab.analysis.metrics import moving_average  # noqa: E402

log = logging.getLogger("looplab")


def _save(fig, path: Path) -> None:
    from looplab import io

    io.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"), binary=True)
    plt.close(fig)


def session_graphs(paths, trial: int, session: int, kind: str = "train") -> None:
    """Return (and its moving average) and each logged variable vs frames."""
    try:
        df = pd.read_csv(paths.session_df(trial, session, kind))
        x = df["frame"].to_numpy()
        graphs = {"mean_returns": df["total_reward"].to_numpy(),
                  "mean_returns_ma": moving_average(df["total_reward"].to_numpy())}
        for col in ("loss", "lr", "explore_var", "entropy_coef", "entropy", "clip_eps", "alpha", "fps"):
            if col in df.columns and df[col].notna().any():
                graphs[col] = df[col].to_numpy()
        for key, y in graphs.items():
            fig, ax = plt.subplots(figsize=(6, 3.6))
            ax.plot(x, y, lw=1.5)
            ax.set_xlabel("frames")
            ax.set_ylabel(key)
            ax.set_title(f"{paths.prename(trial, session)} {key}")
            ax.grid(alpha=0.3)
            _save(fig, paths.file("graph", trial, session, f"session_graph_{kind}_{key}_vs_frames.png"))
    except Exception as e:  # a graph that cannot be drawn is reported, never silent
        log.error("session graph of %s could not be drawn: %s", paths.prename(trial, session), e)


def trial_graphs(paths, trial: int, num_sessions: int, kind: str = "train") -> None:
    """Mean return over sessions with a +-1 std band (and its moving-average variant)."""
    try:
        dfs = [pd.read_csv(paths.session_df(trial, s, kind)) for s in range(num_sessions)
               if paths.session_df(trial, s, kind).exists()]
        n = min(len(d) for d in dfs)
        x = dfs[0]["frame"].to_numpy()[:n]
        for key, fn in (("mean_returns", lambda v: v), ("mean_returns_ma", moving_average)):
            mat = np.stack([fn(d["total_reward"].to_numpy()[:n]) for d in dfs])
            mean, std = np.nanmean(mat, 0), np.nanstd(mat, 0)
            fig, ax = plt.subplots(figsize=(6, 3.6))
            for row in mat:
                ax.plot(x, row, lw=0.8, alpha=0.25, color="tab:blue")
            ax.plot(x, mean, lw=2, color="tab:blue", label=f"mean of {len(dfs)} sessions")
            ax.fill_between(x, mean - std, mean + std, alpha=0.2, color="tab:blue", label="±1 std")
            ax.set_xlabel("frames")
            ax.set_ylabel(key)
            ax.set_title(f"{paths.prename(trial)} {key}")
            ax.legend(loc="lower right")
            ax.grid(alpha=0.3)
            _save(fig, paths.root / f"{paths.prename(trial)}_trial_graph_{key}_vs_frames.png")
    except Exception as e:
        log.error("trial graph of %s could not be drawn: %s", paths.prename(trial), e)
