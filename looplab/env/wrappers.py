"""Env wrappers: observation/reward normalization and clipping, Atari preprocessing, full-game returns.

Normalizers work on whole vector-env batches (NumPy, no per-env loops) and keep their statistics in a
`state_dict()` so that a checkpoint restores them. Atari preprocessing for Gymnasium's own vector envs
matches ale-py's native AtariVectorEnv: grayscale 84x84, max-pooled frame skip 4 (done by the v5 env
itself), 4 stacked frames, observations kept as uint8.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers.utils import RunningMeanStd

ATARI_FRAME_STACK = 4
ATARI_SIZE = 84
# keys ale-py's native AtariVectorEnv takes that the single-env AtariEnv does not
ATARI_VECTOR_ONLY_KEYS = ("life_loss_info", "reward_clipping", "episodic_life", "noop_max", "use_fire_reset",
                          "stack_num", "img_height", "img_width", "grayscale", "maxpool", "num_threads",
                          "batch_size", "thread_affinity_offset")


def _rms_state(rms: RunningMeanStd) -> dict[str, Any]:
    return {"mean": np.array(rms.mean), "var": np.array(rms.var), "count": float(rms.count)}


def _load_rms(rms: RunningMeanStd, d: dict[str, Any]) -> None:
    rms.mean, rms.var, rms.count = np.array(d["mean"]), np.array(d["var"]), float(d["count"])


class ObsNormalizer:
    """Running mean/std normalization of observations, updated from every vector step while training."""

    def __init__(self, shape: tuple[int, ...], epsilon: float = 1e-8):
        self.rms = RunningMeanStd(shape=shape)
        self.epsilon = epsilon
        self.update = True  # frozen in enjoy / evaluation

    def __call__(self, obs: np.ndarray, update: bool = True) -> np.ndarray:
        if update and self.update:
            self.rms.update(obs)
        return self.normalize(obs)

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        return ((obs - self.rms.mean) / np.sqrt(self.rms.var + self.epsilon)).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return _rms_state(self.rms)

    def load_state_dict(self, d: dict[str, Any]) -> None:
        _load_rms(self.rms, d)


class RewardNormalizer:
    """Scales rewards by the running std of the discounted return (Engstrom et al. 2020; as Gymnasium's
    NormalizeReward): the return accumulator restarts where an episode ended."""

    def __init__(self, num_envs: int, gamma: float, epsilon: float = 1e-8):
        self.rms = RunningMeanStd(shape=())
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.gamma = gamma
        self.epsilon = epsilon
        self.update = True

    def __call__(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        if self.update:
            self.returns = self.returns * self.gamma + reward
            self.rms.update(self.returns)
            self.returns[done] = 0.0
        return (reward / np.sqrt(self.rms.var + self.epsilon)).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {**_rms_state(self.rms), "returns": self.returns.copy()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        _load_rms(self.rms, d)
        self.returns = np.array(d["returns"], dtype=np.float64)


def clip_bounds(value: float | list[float] | None) -> tuple[float, float] | None:
    """`clip_obs` / `clip_reward`: a number v means [-v, v]; a pair means [lo, hi]; None means no clipping."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return -abs(float(value)), abs(float(value))
    lo, hi = value
    return float(lo), float(hi)


def game_over(terminated: np.ndarray, truncated: np.ndarray, lives: np.ndarray | None,
              prev_lives: np.ndarray | None) -> np.ndarray:
    """Which envs finished a whole game (all lives), for full-game returns under `life_loss_info`.

    A life loss ends an episode with fewer lives than before; a game over resets the env in the same step,
    so the lives count does not drop (it goes back to full, or stays 0 in games without lives).
    """
    done = terminated | truncated
    if lives is None or prev_lives is None:
        return done
    return truncated | (terminated & (lives >= prev_lives))


def atari_preprocess(env: gym.Env) -> gym.Env:
    """Per-env Atari preprocessing matching AtariVectorEnv (the v5 env already skips 4 frames)."""
    env = gym.wrappers.AtariPreprocessing(env, frame_skip=1, screen_size=ATARI_SIZE, grayscale_obs=True,
                                          scale_obs=False)
    return gym.wrappers.FrameStackObservation(env, stack_size=ATARI_FRAME_STACK, padding_type="zero")


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")
