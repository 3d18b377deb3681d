"""Random-policy baselines per env: SLM Lab's published table first; else 100 random episodes, measured once
and cached in the user cache."""

from __future__ import annotations

import json
import logging
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from looplab import io
from looplab.env.make import single_env_fn

EPISODES = 100
MAX_STEPS = 200_000
# SLM Lab's table of random-policy mean returns per env id (its spec/_random_baseline.json), shipped as is
SHIPPED = Path(__file__).resolve().parents[1] / "spec" / "library" / "slm_lab" / "_random_baseline.json"
# env keys that leave a random policy's whole-game return as it is (returns are reported per whole game)
RETURN_NEUTRAL_KWARGS = {"life_loss_info"}
log = logging.getLogger("looplab")


@cache
def shipped_baselines() -> dict[str, float]:
    try:
        table = io.read_json(SHIPPED)
    except (OSError, ValueError):
        return {}
    return {k: float(v["mean"]) for k, v in table.items() if isinstance(v, dict) and v.get("mean") is not None}


def cache_file() -> Path:
    base = os.environ.get("LOOPLAB_CACHE_DIR")
    if base is None:
        from platformdirs import user_cache_dir

        base = user_cache_dir("looplab")
    return Path(base) / "random_baseline.json"


def _key(env_name: str, kwargs: dict) -> str:
    return env_name + (json.dumps(kwargs, sort_keys=True) if kwargs else "")


def random_baseline(env_name: str, kwargs: dict | None = None) -> float:
    """Mean return of a uniform random policy: SLM Lab's table where it knows the env (and no env key
    changes the returns), else 100 episodes (fewer if they exceed 200k steps) measured once and cached."""
    kwargs = kwargs or {}
    known = shipped_baselines()
    if env_name in known and set(kwargs) <= RETURN_NEUTRAL_KWARGS:
        return known[env_name]
    path = cache_file()
    key = _key(env_name, kwargs)
    try:
        cache = io.read_json(path)
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return float(cache[key]["mean"])
    log.info("random baseline of %s: not in SLM Lab's table, measuring %d random episodes (once; cached in %s)",
             key, EPISODES, path)
    mean, n = _measure(env_name, kwargs)
    cache[key] = {"mean": mean, "episodes": n}
    try:
        io.write_json(path, cache)
    except io.WriteError:
        pass  # an unwritable cache only costs recomputation
    return mean


def _measure(env_name: str, kwargs: dict[str, Any]) -> tuple[float, int]:
    env = single_env_fn(env_name, kwargs)()
    env.action_space.seed(0)
    returns, steps = [], 0
    obs, _ = env.reset(seed=0)
    total = 0.0
    while len(returns) < EPISODES and steps < MAX_STEPS:
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        total += float(r)
        steps += 1
        if term or trunc:
            returns.append(total)
            total = 0.0
            env.reset()
    env.close()
    return (float(np.mean(returns)) if returns else 0.0), len(returns)
