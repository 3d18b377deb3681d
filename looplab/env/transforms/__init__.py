"""Env transforms, registered by name: each module here registers its own (found on first lookup).

The env builds its chain from the spec's env keys (and the nets' `seq_len`) and runs it after every reset
and vector step, in this order (each class's `order`):

| order | name | spec key | what it does |
|---|---|---|---|
| 10 | `obs_norm` | `normalize_obs` | observations normalized by their running mean and std |
| 20 | `obs_clip` | `clip_obs` (10 under `normalize_obs`) | observations clipped |
| 30 | `reward_scale` | `reward_scale` | learning rewards multiplied by a constant |
| 40 | `reward_norm` | `normalize_reward` | learning rewards divided by the running std of the discounted return |
| 50 | `reward_clip` | `clip_reward` (10 under `normalize_reward`, 1 for Atari) | learning rewards clipped |
| 80 | `frame_stack` | `frame_stack` | each env's last k observations concatenated along the first axis (not Atari: stacked already) |
| 90 | `history` | the nets' `seq_len` | each env's last `seq_len` observations as one state |
"""

from looplab.env.transforms.base import (
    TRANSFORMS,
    EnvContext,
    ObsTransform,
    Step,
    Transform,
    build_chain,
    chain_space,
)

__all__ = ["TRANSFORMS", "EnvContext", "ObsTransform", "Step", "Transform", "build_chain", "chain_space"]
