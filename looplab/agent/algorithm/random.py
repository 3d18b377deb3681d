"""Random: the uniform-random baseline; acts from the action space and never trains."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from looplab.agent.algorithm.base import ALGORITHMS, Algorithm, AlgorithmConfig


class RandomConfig(AlgorithmConfig):
    # Random reads no keys, so the algorithm section of any spec can be reused for a baseline run
    model_config = {**AlgorithmConfig.model_config, "extra": "allow"}


@ALGORITHMS.register("Random")
class Random(Algorithm):
    Config = RandomConfig
    needs_net = False

    def init_nets(self) -> None:
        info = self.env_info
        self.training_frequency = 1  # memories size themselves by it; nothing is stored
        self.space = gym.vector.utils.batch_space(info.action_space, info.num_envs)
        # the space samples from the session's `space` stream; a Gymnasium space takes a generator only when
        # it is built, and batch_space builds it with a copy of the env's
        self.space._np_random = self.rng.space

    def act(self, state: np.ndarray) -> np.ndarray:
        return self.space.sample()

    def update(self, state, action, reward, next_state, terminated, truncated) -> None:
        """Nothing to learn; the memory is not filled."""

    def train(self) -> float:
        return float("nan")
