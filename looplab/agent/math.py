"""Return and advantage estimators on [T, N] arrays (time steps x vector envs).

`terminated` stops bootstrapping; `done` (terminated or truncated) stops the backward recursion.
A truncated step still bootstraps from V(next_state), which is the true final observation.
"""

from __future__ import annotations

import numpy as np


def discounted_returns(rewards: np.ndarray, terminated: np.ndarray, done: np.ndarray, gamma: float,
                       next_values: np.ndarray | None = None) -> np.ndarray:
    """R_t = r_t + gamma * (1 - term_t) * (R_{t+1} if not done_t else V(s'_t)).

    Without `next_values`, the tail of an unfinished trajectory and truncated steps bootstrap from 0
    (plain Monte Carlo returns, as REINFORCE uses them).
    """
    T = rewards.shape[0]
    out = np.zeros_like(rewards, dtype=np.float64)
    nv = np.zeros_like(rewards, dtype=np.float64) if next_values is None else next_values
    running = nv[T - 1] if T else 0.0
    for t in range(T - 1, -1, -1):
        cont = np.where(done[t], nv[t], running)
        running = rewards[t] + gamma * (1.0 - terminated[t]) * cont
        out[t] = running
    return out


def gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray, terminated: np.ndarray,
        done: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """Generalized advantage estimation (Schulman et al. 2016)."""
    T = rewards.shape[0]
    adv = np.zeros_like(rewards, dtype=np.float64)
    delta = rewards + gamma * (1.0 - terminated) * next_values - values
    running = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in range(T - 1, -1, -1):
        running = delta[t] + gamma * lam * (1.0 - done[t]) * running
        adv[t] = running
    return adv


def nstep_returns(rewards: np.ndarray, terminated: np.ndarray, done: np.ndarray, next_values: np.ndarray,
                  gamma: float, n: int) -> np.ndarray:
    """n-step returns: sum_{k<n} gamma^k r_{t+k} + gamma^n V(s_{t+n}), cut at episode ends.

    The window is also cut at the end of the batch, where it bootstraps from V(next_state).
    """
    T = rewards.shape[0]
    out = np.zeros_like(rewards, dtype=np.float64)
    for t in range(T):
        ret = np.zeros(rewards.shape[1:], dtype=np.float64)
        disc = np.ones(rewards.shape[1:], dtype=np.float64)
        alive = np.ones(rewards.shape[1:], dtype=bool)
        for k in range(n):
            i = t + k
            if i >= T:
                break
            ret += alive * disc * rewards[i]
            last = (k == n - 1) | (i == T - 1) | done[i].astype(bool)
            boot = alive & last
            ret += boot * disc * gamma * (1.0 - terminated[i]) * next_values[i]
            alive = alive & ~last
            disc = disc * gamma
        out[t] = ret
    return out
