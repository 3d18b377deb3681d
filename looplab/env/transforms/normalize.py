"""`normalize_obs` and `normalize_reward`: running-statistics normalization of observations and rewards."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.wrappers.utils import RunningMeanStd

from looplab.env.transforms.base import TRANSFORMS, EnvContext, ObsTransform, Step, Transform
from looplab.spec.schema import Spec


def _rms_state(rms: RunningMeanStd) -> dict[str, Any]:
    return {"mean": np.array(rms.mean), "var": np.array(rms.var), "count": float(rms.count)}


def _load_rms(rms: RunningMeanStd, d: dict[str, Any]) -> None:
    rms.mean, rms.var, rms.count = np.array(d["mean"]), np.array(d["var"]), float(d["count"])


@TRANSFORMS.register("obs_norm")
class ObsNormalizer(ObsTransform):
    """Running mean/std normalization of observations, updated from every vector step while training."""

    order = 10

    def __init__(self, shape: tuple[int, ...], epsilon: float = 1e-8):
        super().__init__()
        self.rms = RunningMeanStd(shape=shape)
        self.epsilon = epsilon

    @classmethod
    def from_spec(cls, spec: Spec, ctx: EnvContext) -> ObsNormalizer | None:
        return cls(tuple(ctx.observation_space.shape or ())) if spec.env.normalize_obs else None

    def transform(self, obs: np.ndarray, update: bool) -> np.ndarray:
        if update and not self.frozen:
            self.rms.update(obs)
        return ((obs - self.rms.mean) / np.sqrt(self.rms.var + self.epsilon)).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return _rms_state(self.rms)

    def load_state_dict(self, d: dict[str, Any]) -> None:
        _load_rms(self.rms, d)


@TRANSFORMS.register("reward_norm")
class RewardNormalizer(Transform):
    """Scales rewards by the running std of the discounted return (Engstrom et al. 2020; as Gymnasium's
    NormalizeReward): the return accumulator restarts where an episode ended."""

    order = 40

    def __init__(self, num_envs: int, gamma: float, epsilon: float = 1e-8):
        super().__init__()
        self.rms = RunningMeanStd(shape=())
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.gamma = gamma
        self.epsilon = epsilon

    @classmethod
    def from_spec(cls, spec: Spec, ctx: EnvContext) -> RewardNormalizer | None:
        if not spec.env.normalize_reward:
            return None
        return cls(ctx.num_envs, float(getattr(spec.algorithm, "gamma", 0.99) if spec.algorithm is not None else 0.99))

    def step(self, step: Step) -> None:
        if not self.frozen:
            self.returns = self.returns * self.gamma + step.reward
            self.rms.update(self.returns)
            self.returns[step.done] = 0.0
        step.reward = (step.reward / np.sqrt(self.rms.var + self.epsilon)).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {**_rms_state(self.rms), "returns": self.returns.copy()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        _load_rms(self.rms, d)
        self.returns = np.array(d["returns"], dtype=np.float64)
