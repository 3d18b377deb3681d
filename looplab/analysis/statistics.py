"""Robust aggregate statistics over sessions (the approach of the rliable library)."""

from __future__ import annotations

import numpy as np


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of values (25% trimmed from each end)."""
    values = np.sort(np.asarray(values, dtype=float))
    cut = int(0.25 * len(values))
    return float(values[cut: len(values) - cut].mean())


def bootstrap_ci(values: np.ndarray, stat=iqm, reps: int = 2000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap (1-alpha) interval of `stat` over sessions, resampling sessions with replacement.

    With one task (one env), rliable's stratified bootstrap reduces to this. Seeded: the same
    inputs always give the same interval.
    """
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(reps, len(values)))
    boot = np.array([stat(values[i]) for i in idx])
    return float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1 - alpha / 2))
