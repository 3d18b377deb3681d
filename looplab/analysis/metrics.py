"""Session and trial metrics (SLM Lab's formulas) from session dataframes.

R_i = total_reward at log checkpoint i, f_i its frame, o_i its opt_step, R_rand the env's random baseline.
str_i = R_i - R_rand, negative where the agent does worse than random. SLM Lab's formulas assume
str_i >= 0; each is extended here so that it keeps its meaning and its range for negative and mixed
signs, and equals SLM Lab's value whenever every str_i >= 0 (and, for stability, no more is lost than
held):
- efficiency weights 1/f_i by the strength gained, max(str_i, 0); 0 if never better than random;
- stability = 1 - lost / max(held, lost), with held = sum |str_i|: in [0, 1];
- consistency divides the spread across sessions by the mean |str| instead of the mean str: <= 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from looplab import io
from looplab.analysis.statistics import bootstrap_ci, iqm

MA_WINDOW = 100
METRICS_COLS = ["frame", "total_reward_ma", "strength", "max_strength", "final_strength",
                "sample_efficiency", "training_efficiency", "stability", "consistency"]


# What each number in a metrics table is (shown in the report beside the table).
METRIC_DOCS = {
    "frame": "frames (env steps over all vector envs) at the last log checkpoint",
    "total_reward_ma": "mean of the last 100 checkpoint returns R_i (a trial: mean over sessions)",
    "strength": "mean over checkpoints of str_i = R_i - R_rand, R_rand the random policy's mean return",
    "max_strength": "max_i str_i",
    "final_strength": "str_i at the last checkpoint",
    "sample_efficiency": "sum(g_i / frame_i) / sum(g_i), g_i = max(str_i, 0): high when strength comes early in "
                         "frames; 0 if never better than random",
    "training_efficiency": "sum(g_i / opt_step_i) / sum(g_i): the same per gradient step",
    "stability": "1 - lost / max(held, lost), lost = sum of drops in str between checkpoints, held = sum |str_i|: "
                 "1 = never falls back, 0 = lost as much as held",
    "consistency": "1 - 2 sum_i std_j(str_ij) / sum_i mean_j(|str_ij|) over sessions j: 1 = identical sessions, "
                   "never above 1",
    "total_reward_ma_iqm": "interquartile mean over sessions of the final total_reward_ma (robust to outliers)",
    "total_reward_ma_ci_low": "2.5% bound of a stratified bootstrap 95% CI of that IQM (2000 resamples)",
    "total_reward_ma_ci_high": "97.5% bound of that interval",
    "num_sessions": "sessions aggregated",
    "random_baseline": "R_rand: mean return of a uniform random policy over 100 episodes",
}


def moving_average(values: np.ndarray, window: int = MA_WINDOW) -> np.ndarray:
    """Mean of the last min(i+1, window) values at each i, ignoring NaN."""
    s = pd.Series(values, dtype=float)
    return s.rolling(window, min_periods=1).mean().to_numpy()


def strength(rewards: np.ndarray, random_baseline: float) -> np.ndarray:
    return np.asarray(rewards, dtype=float) - random_baseline


def efficiency(strengths: np.ndarray, steps: np.ndarray) -> float:
    """sum(w_i / s_i) / sum(w_i) with w_i = max(str_i, 0), dropping terms with s_i = 0 from the numerator.

    A strength-weighted mean of 1/s_i: high when strength was gained early. Only strength above the
    random baseline counts as gained, so a session never better than random has efficiency 0.
    """
    gained = np.maximum(np.asarray(strengths, dtype=float), 0.0)
    steps = np.asarray(steps, dtype=float)
    den = gained.sum()
    mask = steps > 0
    return float((gained[mask] / steps[mask]).sum() / den) if den > 0 else 0.0


def stability(strengths: np.ndarray) -> float:
    """1 - lost / max(held, lost): lost = sum of drops between consecutive checkpoints, held = sum |str_i|
    before the last; 1 = never fell back, 0 = lost at least as much as it held. In [0, 1]."""
    s = np.asarray(strengths, dtype=float)
    if len(s) < 2:
        return float("nan")
    lost = -np.minimum(np.diff(s), 0.0).sum()
    held = np.abs(s[:-1]).sum()
    den = max(held, lost)
    return float(1.0 - lost / den) if den > 0 else 1.0


def consistency(strength_series: list[np.ndarray]) -> float:
    """1 - 2 * sum_i std_j(str_ij) / sum_i mean_j(|str_ij|), series cut to the shortest; 1 session -> 1.

    At most 1 (identical sessions); sessions that are all at the random baseline are identical: 1.
    """
    if len(strength_series) <= 1:
        return 1.0
    n = min(len(s) for s in strength_series)
    mat = np.stack([np.asarray(s[:n], dtype=float) for s in strength_series])
    spread = mat.std(axis=0, ddof=1).sum()
    size = np.abs(mat).mean(axis=0).sum()
    return float(1.0 - 2.0 * spread / size) if size > 0 else 1.0


def session_metrics(df: pd.DataFrame, random_baseline: float) -> dict:
    """Scalar session metrics and the local (per-row) series."""
    # frames trained, whether or not an episode has finished by then
    last_frame = int(df["frame"].iloc[-1]) if len(df) else 0
    df = df.dropna(subset=["total_reward"])
    if len(df) == 0:
        nan = float("nan")
        scalar = dict.fromkeys(["total_reward_ma", "strength", "max_strength", "final_strength",
                                "sample_efficiency", "training_efficiency", "stability"], nan)
        return {"scalar": _clean({"frame": last_frame, **scalar}), "local": {}}
    s = strength(df["total_reward"].to_numpy(), random_baseline)
    frames = df["frame"].to_numpy(dtype=float)
    opt_steps = df["opt_step"].to_numpy(dtype=float)
    scalar = {
        "frame": last_frame,
        "total_reward_ma": float(df["total_reward"].to_numpy()[-MA_WINDOW:].mean()),
        "strength": float(s.mean()),
        "max_strength": float(s.max()),
        "final_strength": float(s[-1]),
        "sample_efficiency": efficiency(s, frames),
        "training_efficiency": efficiency(s, opt_steps),
        "stability": stability(s),
    }
    local = {
        "frame": frames.tolist(),
        "strength": s.tolist(),
        "sample_efficiency": _cum_efficiency(s, frames).tolist(),
        "training_efficiency": _cum_efficiency(s, opt_steps).tolist(),
    }
    return {"scalar": _clean(scalar), "local": local}


def _cum_efficiency(s: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """`efficiency` of each prefix of the series."""
    gained = np.maximum(s, 0.0)
    num = np.cumsum(np.where(steps > 0, gained / np.where(steps > 0, steps, 1), 0.0))
    den = np.cumsum(gained)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def trial_metrics(session_dfs: list[pd.DataFrame], session_scalars: list[dict], random_baseline: float) -> dict:
    """Means of the session metrics plus consistency, IQM and a bootstrap CI of the final return."""
    keys = ["total_reward_ma", "strength", "max_strength", "final_strength", "sample_efficiency",
            "training_efficiency", "stability"]
    # a session that finished no episode has None metrics: it is left out of the means
    scalar: dict = {"frame": max((int(m.get("frame") or 0) for m in session_scalars), default=0)}
    for k in keys:
        vals = [float("nan") if m.get(k) is None else m[k] for m in session_scalars]
        scalar[k] = float(np.nanmean(vals)) if any(v == v for v in vals) else float("nan")
    series = [strength(df.dropna(subset=["total_reward"])["total_reward"].to_numpy(), random_baseline)
              for df in session_dfs]
    scalar["consistency"] = consistency([s for s in series if len(s)]) if any(len(s) for s in series) else float("nan")
    finals = np.array([m.get("total_reward_ma") for m in session_scalars], dtype=float)  # None -> NaN
    finals = finals[np.isfinite(finals)]
    scalar["total_reward_ma_iqm"] = iqm(finals) if len(finals) else float("nan")
    lo, hi = bootstrap_ci(finals) if len(finals) else (float("nan"), float("nan"))
    scalar["total_reward_ma_ci_low"], scalar["total_reward_ma_ci_high"] = lo, hi
    scalar["num_sessions"] = len(session_scalars)
    return _clean(scalar)


def _clean(d: dict) -> dict:
    """JSON-safe: NaN/inf become None."""
    out = {}
    for k, v in d.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out


def write_session_metrics(paths: Any, trial: int, session: int, df: pd.DataFrame, random_baseline: float,
                          kind: str = "train") -> dict:
    """Compute and write `info/..._session_metrics[_scalar]_{kind}.json`; returns the scalar metrics."""
    metrics = session_metrics(df, random_baseline)
    io.write_json(paths.session_metrics(trial, session, kind), metrics)
    io.write_json(paths.session_metrics(trial, session, kind, scalar=True), metrics["scalar"])
    return metrics["scalar"]


def write_trial_metrics(paths: Any, trial: int, session_dfs: list[pd.DataFrame], session_scalars: list[dict],
                        random_baseline: float, kind: str = "train") -> dict:
    """Compute and write the trial metrics files (root and `info/`; eval ones `info/..._eval.json` only);
    returns the scalar metrics."""
    metrics = trial_metrics(session_dfs, session_scalars, random_baseline)
    metrics["random_baseline"] = random_baseline
    if kind == "train":
        io.write_json(paths.trial_metrics(trial), metrics)
    io.write_json(paths.trial_info_metrics(trial, kind, scalar=True), metrics)
    io.write_json(paths.trial_info_metrics(trial, kind),
                  {"scalar": metrics, "sessions": session_scalars})
    return metrics
