"""`frame_stack`: each env's last k observations, concatenated along the first observation axis.

A vector observation of shape (d,) becomes (k·d,); an image (c, h, w) becomes (k·c, h, w), the oldest
frame first, zero-padded at the start of an episode, as Stable-Baselines3's VecFrameStack does. A
feed-forward net then sees motion (velocities a single frame does not show). Atari observations are
stacks of 4 frames already (`looplab.env.atari`), so the key is refused there.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from looplab.env.transforms.base import TRANSFORMS, EnvContext, Step
from looplab.env.transforms.history import ObsHistory, window_space
from looplab.spec.schema import Spec


@TRANSFORMS.register("frame_stack")
class FrameStack(ObsHistory):
    """The observation history of `ObsHistory`, each window flattened along its first two axes. Before the
    recurrent window in the chain, so that a recurrent net sees windows of stacked frames."""

    order = 80

    @classmethod
    def from_spec(cls, spec: Spec, ctx: EnvContext) -> FrameStack | None:
        k = spec.env.frame_stack
        space = ctx.observation_space
        if k is None or k == 1:
            return None
        if not isinstance(space, gym.spaces.Box) or not space.shape:
            raise ValueError(f"env.frame_stack needs observations that are arrays (a Box space), got {space}")
        return cls(ctx.num_envs, k, tuple(space.shape), space.dtype)

    def observation_space(self, space: gym.Space) -> gym.Space:
        window = window_space(space, self.seq_len)
        shape = self.stacked_shape(space.shape)
        return gym.spaces.Box(window.low.reshape(shape), window.high.reshape(shape), dtype=window.dtype)

    def stacked_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.seq_len * shape[0], *shape[1:])

    def flat(self, window: np.ndarray) -> np.ndarray:
        """[N, k, d0, ...] -> [N, k·d0, ...] (a view)."""
        return window.reshape(window.shape[0], -1, *window.shape[3:])

    def reset(self, obs: np.ndarray) -> np.ndarray:
        return self.flat(super().reset(obs))

    def step(self, step: Step) -> None:
        window, next_window = self.slide(step.obs, step.next_state, step.ended)
        step.obs = self.flat(window)
        step.next_state = step.obs if next_window is window else self.flat(next_window)

    def restart(self, i: int, obs: np.ndarray) -> np.ndarray:
        return super().restart(i, obs).reshape(self.stacked_shape(obs.shape))
