"""Observation history: each env's last `seq_len` observations as one state, for recurrent nets.

A net whose config has a `seq_len` (RecurrentNet) sees states of shape [seq_len, *obs_shape]: the
env's observations of the current episode, oldest first, zero-padded at the start of an episode.
Because the window is the state itself, every algorithm and memory works unchanged: memories store
windows, and training sees true sequences. Where an episode ends, `next_state` is the window that
ends with the true final observation, while the state to act on next is the new episode's window
(zeros, then the reset observation). The window is saved in checkpoints as the transform's state.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from looplab.env.transforms.base import TRANSFORMS, EnvContext, Step, Transform
from looplab.spec.schema import Spec


def history_length(spec: Spec) -> int | None:
    """The longest `seq_len` among the spec's nets, or None when no net wants a history."""
    lens = [getattr(cfg, "seq_len", None) for cfg in (getattr(spec, "net", None), getattr(spec, "critic_net", None))]
    lens = [n for n in lens if n is not None]
    return max(lens) if lens else None


def window_space(space: gym.Space, seq_len: int) -> gym.spaces.Box:
    """The observation space of windows of `seq_len` observations of `space` (zeros are in bounds)."""
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"an observation history needs a Box observation space, got {space}")
    low = np.minimum(np.broadcast_to(space.low, space.shape), 0).astype(space.dtype)
    high = np.maximum(np.broadcast_to(space.high, space.shape), 0).astype(space.dtype)
    return gym.spaces.Box(np.stack([low] * seq_len), np.stack([high] * seq_len), dtype=space.dtype)


@TRANSFORMS.register("history")
class ObsHistory(Transform):
    """The windows of the last `seq_len` observations of every env of a vector env (no loop over envs).

    Last in the chain: windows hold the transformed observations. Each call returns a new array, so a window
    handed out earlier (a state held by the agent or stored in a memory) never changes afterwards.
    """

    order = 90

    def __init__(self, num_envs: int, seq_len: int, obs_shape: tuple[int, ...], dtype: Any):
        super().__init__()
        self.seq_len = seq_len
        self.window = np.zeros((num_envs, seq_len, *obs_shape), dtype=dtype)

    @classmethod
    def from_spec(cls, spec: Spec, ctx: EnvContext) -> ObsHistory | None:
        seq_len = history_length(spec)
        space = ctx.observation_space
        return None if seq_len is None else cls(ctx.num_envs, seq_len, tuple(space.shape or ()), space.dtype)

    def observation_space(self, space: gym.Space) -> gym.Space:
        return window_space(space, self.seq_len)

    def reset(self, obs: np.ndarray) -> np.ndarray:
        """Windows of fresh episodes: zeros, then `obs`."""
        window = np.zeros_like(self.window)
        window[:, -1] = obs
        self.window = window
        return window

    def step(self, step: Step) -> None:
        step.obs, step.next_state = self.slide(step.obs, step.next_state, step.ended)

    def slide(self, obs: np.ndarray, next_state: np.ndarray, reset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows after a vector step: (state to act on next, next_state of the transition).

        `obs` holds reset observations where `reset` is true, `next_state` the true final observations
        there (elsewhere both are the same successor observation).
        """
        window = np.concatenate([self.window[:, 1:], obs[:, None].astype(self.window.dtype, copy=False)], axis=1)
        if reset.any():
            next_window = window.copy()
            next_window[reset, -1] = next_state[reset]
            window[reset, :-1] = 0
        else:
            next_window = window
        self.window = window
        return window, next_window

    def restart(self, i: int, obs: np.ndarray) -> np.ndarray:
        """Start a new episode's window in env `i` (a resume that cannot restore that env exactly)."""
        window = self.window.copy()
        window[i] = 0
        window[i, -1] = obs
        self.window = window
        return window[i]

    def state_dict(self) -> dict:
        return {"window": self.window.copy()}

    def load_state_dict(self, d: dict) -> None:
        window = np.asarray(d["window"], dtype=self.window.dtype)
        # windows of another number of envs (enjoy replays in one env) are of no use: a reset follows there
        if window.shape == self.window.shape:
            self.window = window.copy()
