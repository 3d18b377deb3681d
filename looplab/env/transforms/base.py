"""The env transform type, its registry, and the chain the env builds from the spec.

A transform changes what the agent sees and learns from, on whole vector-env batches: observations
(`obs`, and `next_state`, the true successors), learning rewards, or the state's shape. It runs after the
env's own bookkeeping, so episode returns stay raw and `next_state` already holds the final observations of
ended games. Each keeps its statistics in `state_dict()` (saved by its registered name in checkpoints) and
stops updating them once frozen (evaluation, enjoy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from looplab.registry import Registry
from looplab.spec.schema import Spec

TRANSFORMS = Registry("env transform", "env", package="looplab.env.transforms")


@dataclass(frozen=True)
class EnvContext:
    """What a transform may know of the vector env it transforms."""

    num_envs: int
    observation_space: gym.Space  # of one sub-env, before any transform
    atari: bool


@dataclass(slots=True)
class Step:
    """One vector step as the transforms see it; each changes its fields in place."""

    obs: np.ndarray  # what to act on next: reset observations where a game ended
    next_state: np.ndarray  # the true successors: final observations where a game ended; `is obs` when none did
    reward: np.ndarray  # the learning reward
    done: np.ndarray  # terminated | truncated: an episode (one life under life_loss_info) ended
    ended: np.ndarray  # a whole game ended and its env was reset


class Transform:
    """One link of the chain. `order` places it (see looplab.env.transforms); `from_spec` returns None when
    the spec does not turn it on."""

    order: ClassVar[int]

    def __init__(self) -> None:
        self.frozen = False

    @classmethod
    def from_spec(cls, spec: Spec, ctx: EnvContext) -> Transform | None:
        raise NotImplementedError

    def observation_space(self, space: gym.Space) -> gym.Space:
        """The single-env observation space after this transform."""
        return space

    def reset(self, obs: np.ndarray) -> np.ndarray:
        """The first observations of every env's episode."""
        return obs

    def step(self, step: Step) -> None:
        raise NotImplementedError

    def restart(self, i: int, obs: np.ndarray) -> np.ndarray:
        """The first observation of env `i` alone (a resume that cannot restore that env exactly)."""
        return obs

    def freeze(self) -> None:
        """Stop updating statistics (evaluation, enjoy)."""
        self.frozen = True

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        pass


class ObsTransform(Transform):
    """A transform of observations alone; statistics learn from `obs`, never from `next_state` again."""

    def transform(self, obs: np.ndarray, update: bool) -> np.ndarray:
        raise NotImplementedError

    def reset(self, obs: np.ndarray) -> np.ndarray:
        return self.transform(obs, True)

    def step(self, step: Step) -> None:
        same = step.next_state is step.obs
        step.obs = self.transform(step.obs, True)
        step.next_state = step.obs if same else self.transform(step.next_state, False)


def build_chain(spec: Spec, ctx: EnvContext) -> dict[str, Transform]:
    """The transforms the spec turns on, by registered name, in chain order."""
    chain = {}
    for name in sorted(TRANSFORMS, key=lambda n: (TRANSFORMS.get(n).order, n)):
        transform = TRANSFORMS.get(name).from_spec(spec, ctx)
        if transform is not None:
            chain[name] = transform
    return chain


def chain_space(chain: dict[str, Transform], space: gym.Space) -> gym.Space:
    """The single-env observation space the agent sees after the chain."""
    for transform in chain.values():
        space = transform.observation_space(space)
    return space
