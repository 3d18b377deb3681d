"""Atari: per-env preprocessing for Gymnasium's own vector envs and full-game returns under life_loss_info.

Preprocessing matches ale-py's native AtariVectorEnv: grayscale 84x84, max-pooled frame skip 4 (done by the
v5 env itself), 4 stacked frames, observations kept as uint8. Atari's default reward clipping is a transform
(looplab.env.transforms.clip).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ATARI_FRAME_STACK = 4
ATARI_SIZE = 84
# keys ale-py's native AtariVectorEnv takes that the single-env AtariEnv does not
ATARI_VECTOR_ONLY_KEYS = ("life_loss_info", "reward_clipping", "episodic_life", "noop_max", "use_fire_reset",
                          "stack_num", "img_height", "img_width", "grayscale", "maxpool", "num_threads",
                          "batch_size", "thread_affinity_offset")


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
