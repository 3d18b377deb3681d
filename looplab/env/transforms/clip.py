"""`clip_obs` and `clip_reward`: observations and learning rewards clipped to bounds."""

from __future__ import annotations

import numpy as np

from looplab.env.transforms.base import TRANSFORMS, EnvContext, ObsTransform, Step, Transform
from looplab.spec.schema import Spec


def clip_bounds(value: float | list[float] | None) -> tuple[float, float] | None:
    """`clip_obs` / `clip_reward`: a number v means [-v, v]; a pair means [lo, hi]; None means no clipping."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return -abs(float(value)), abs(float(value))
    lo, hi = value
    return float(lo), float(hi)


@TRANSFORMS.register("obs_clip")
class ObsClip(ObsTransform):
    """Observations clipped to `clip_obs` (default 10 under `normalize_obs`)."""

    order = 20

    def __init__(self, bounds: tuple[float, float]):
        super().__init__()
        self.bounds = bounds

    @classmethod
    def from_spec(cls, spec: Spec, ctx: EnvContext) -> ObsClip | None:
        env = spec.env
        bounds = clip_bounds(env.clip_obs if env.clip_obs is not None else (10.0 if env.normalize_obs else None))
        return None if bounds is None else cls(bounds)

    def transform(self, obs: np.ndarray, update: bool) -> np.ndarray:
        return np.clip(obs, *self.bounds)


@TRANSFORMS.register("reward_clip")
class RewardClip(Transform):
    """Learning rewards clipped to `clip_reward`; by default 10 under `normalize_reward`, else 1 for Atari
    (Mnih et al. 2015)."""

    order = 50

    def __init__(self, bounds: tuple[float, float]):
        super().__init__()
        self.bounds = bounds

    @classmethod
    def from_spec(cls, spec: Spec, ctx: EnvContext) -> RewardClip | None:
        env = spec.env
        value = env.clip_reward if env.clip_reward is not None else (10.0 if env.normalize_reward else None)
        bounds = clip_bounds(value if value is not None else (1.0 if ctx.atari else None))
        return None if bounds is None else cls(bounds)

    def step(self, step: Step) -> None:
        step.reward = np.clip(step.reward, *self.bounds)
