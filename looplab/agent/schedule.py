"""Value schedules for the `*_spec` keys (explore_var_spec, entropy_coef_spec, clip_eps_spec).

Each is a pure function of the env frame count, so a schedule needs no state to save or restore.
"""

from __future__ import annotations

import math

from pydantic import field_validator, model_validator

from looplab.registry import Registry
from looplab.spec.schema import NonNegCount, Strict

# schedules, keyed by the `name` of a `*_spec` value schedule
SCHEDULES = Registry("schedule", "name")


@SCHEDULES.register("no_decay")
def no_decay(start_val: float, end_val: float, start_step: int, end_step: int, step: int) -> float:
    return start_val


@SCHEDULES.register("linear_decay")
def linear_decay(start_val: float, end_val: float, start_step: int, end_step: int, step: int) -> float:
    """Linear from start_val at start_step to end_val at end_step, constant outside."""
    if step <= start_step:
        return start_val
    if step >= end_step:
        return end_val
    frac = (step - start_step) / (end_step - start_step)
    return start_val + frac * (end_val - start_val)


@SCHEDULES.register("rate_decay")
def rate_decay(
    start_val: float, end_val: float, start_step: int, end_step: int, step: int,
    decay_rate: float = 0.9, frequency: float = 20.0,
) -> float:
    """start_val * decay_rate**k, k growing by 1 every (end_step - start_step)/frequency frames, floored at end_val."""
    if step <= start_step:
        return start_val
    if end_step <= start_step:
        return end_val
    k = (step - start_step) / ((end_step - start_step) / frequency)
    return max(start_val * decay_rate**k, end_val)


@SCHEDULES.register("periodic_decay")
def periodic_decay(
    start_val: float, end_val: float, start_step: int, end_step: int, step: int, frequency: float = 60.0,
) -> float:
    """A cosine with `frequency` periods whose amplitude decays linearly to end_val at end_step.

    end_val + 0.5 (start_val - end_val) (1 + cos(x) (1 - x/frequency)), x in [0, frequency].
    """
    if step <= start_step:
        return start_val
    if step >= end_step:
        return end_val
    x = (step - start_step) / ((end_step - start_step) / frequency)
    val = end_val + 0.5 * (start_val - end_val) * (1.0 + math.cos(x) * (1.0 - x / frequency))
    return max(val, end_val)


class ScheduleSpec(Strict):
    """A value schedule (`explore_var_spec`, `entropy_coef_spec`, `clip_eps_spec`); steps are env frames."""

    name: str  # no_decay, linear_decay, rate_decay, periodic_decay
    start_val: float  # the value until start_step
    end_val: float | None = None  # the value from end_step on (0 means 0); None: start_val
    start_step: NonNegCount = 0  # env frame where the change starts
    end_step: NonNegCount = 0  # env frame where it ends

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return SCHEDULES.known(v)

    @model_validator(mode="after")
    def _steps(self) -> ScheduleSpec:
        if self.end_val is None:
            self.end_val = self.start_val
        if self.end_step < self.start_step:
            raise ValueError("end_step must not be before start_step")
        return self


class Schedule:
    """A `*_spec` value schedule; `None` spec means a constant `default`."""

    def __init__(self, spec: ScheduleSpec | None, default: float = 0.0):
        self.spec = spec
        self.default = default

    def value(self, frame: int) -> float:
        s = self.spec
        if s is None:
            return self.default
        return float(SCHEDULES.get(s.name)(s.start_val, s.end_val, s.start_step, s.end_step, frame))

    def end_value(self) -> float:
        return self.default if self.spec is None else float(self.spec.end_val)
