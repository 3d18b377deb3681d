"""`reward_scale`: learning rewards multiplied by a constant (before normalization and clipping)."""

from __future__ import annotations

from looplab.env.transforms.base import TRANSFORMS, EnvContext, Step, Transform
from looplab.spec.schema import Spec


@TRANSFORMS.register("reward_scale")
class RewardScale(Transform):
    """Learning rewards times `reward_scale`; episode returns stay raw."""

    order = 30

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    @classmethod
    def from_spec(cls, spec: Spec, ctx: EnvContext) -> RewardScale | None:
        return None if spec.env.reward_scale == 1.0 else cls(spec.env.reward_scale)

    def step(self, step: Step) -> None:
        step.reward = step.reward * self.scale
