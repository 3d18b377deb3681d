"""Robust aggregate statistics over sessions: the interquartile mean and a stratified bootstrap
confidence interval, as in the rliable library (Agarwal et al., 2021, "Deep RL at the Edge of the
Statistical Precipice"), implemented here with NumPy alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def iqm(values: np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50% (int(n/4) values trimmed from each end).

    Same as `scipy.stats.trim_mean(values, 0.25)` (what rliable uses). With `axis`, one IQM per slice.
    """
    values = np.asarray(values, dtype=float)
    if axis is None:
        values = values.ravel()
        axis = 0
    values = np.sort(values, axis=axis)
    n = values.shape[axis]
    if n == 0:
        return float("nan")
    cut = int(0.25 * n)
    kept = np.take(values, np.arange(cut, n - cut), axis=axis)
    out = kept.mean(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def bootstrap_ci(values: np.ndarray, stat: Callable[..., float | np.ndarray] = iqm, reps: int = 2000,
                 alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile stratified-bootstrap (1 - alpha) interval of `stat` over runs.

    `values`: shape (runs,) for one task (env), or (runs, tasks): runs are resampled with replacement
    within each task (the strata), and `stat` is taken over all the resampled scores together, as in
    rliable's `StratifiedBootstrap`. With one task this is the ordinary percentile bootstrap.
    `stat` must accept `axis=1` over a (reps, scores) matrix (iqm and np.mean do). Seeded: the same
    inputs always give the same interval.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    runs, tasks = values.shape
    if runs == 0:
        return float("nan"), float("nan")
    if runs == 1:
        v = float(stat(values.ravel()))
        return v, v
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    samples = values[idx, np.arange(tasks)].reshape(reps, runs * tasks)  # runs resampled per task column
    boot = np.asarray(stat(samples, axis=1), dtype=float)
    return float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1 - alpha / 2))
