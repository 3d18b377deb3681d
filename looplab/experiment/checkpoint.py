"""Full session checkpoints: everything a session needs to continue bit for bit.

A checkpoint holds the algorithm's state (nets, optimizers with lr schedulers, memory contents,
extra state, its random streams by name: `looplab.agent.rng`), the clock, the session's tracker rows and
best-so-far, the global generators (Python's, NumPy's, torch's: for third-party code that draws from them)
and the env's state: each sub-env's wrapper chain (counters, normalizer statistics, `np_random`, spaces'
RNGs), its unwrapped numeric state, and the observation the agent acts on next. It is loaded with
`torch.load(weights_only=True)`, so NumPy arrays are stored as tensors and RNG states as primitives.

An env whose physics cannot be captured (Box2D, for instance) is started at its next episode on
resume, and the log says so.
"""

from __future__ import annotations

import copy
import logging
import random
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from looplab import io
from looplab.env.state import object_state, set_object_state
from looplab.errors import LoopLabError

log = logging.getLogger("looplab")
VERSION = 2  # 2: the algorithm's named random streams in place of generators found by walking its objects
_NP = "__ndarray__"


# ---- encoding for weights_only loading ------------------------------------------------------------
def encode(obj: Any) -> Any:
    """NumPy arrays/scalars and containers as tensors and primitives that `weights_only` loads."""
    if isinstance(obj, np.ndarray):
        arr = obj.astype(np.int64) if obj.dtype.kind == "u" and obj.dtype != np.uint8 else obj
        return {_NP: torch.from_numpy(np.ascontiguousarray(arr).copy()), "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, deque)):
        return [encode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(encode(v) for v in obj)
    return obj


_IMMUTABLE = (int, float, str, bytes, bool, type(None), np.generic, torch.dtype, torch.device)


def snapshot(obj: Any) -> Any:
    """A copy of a state (nets' and optimizers' state_dicts, an env state) that later steps cannot change: tensors
    cloned, arrays copied, containers rebuilt, immutables shared; anything else deep-copied. What copy.deepcopy
    gives, at a fraction of its cost (no memo of shared references, which state_dicts do not rely on)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, _IMMUTABLE):
        return obj
    if isinstance(obj, dict):
        out = {k: snapshot(v) for k, v in obj.items()}
        if type(obj) is not dict:  # an OrderedDict state_dict: keep its type and `_metadata` (module versions)
            out = type(obj)(out)
            if hasattr(obj, "_metadata"):
                out._metadata = copy.deepcopy(obj._metadata)  # type: ignore[attr-defined]
        return out
    if isinstance(obj, list):
        return [snapshot(v) for v in obj]
    if type(obj) is tuple:
        return tuple(snapshot(v) for v in obj)
    return copy.deepcopy(obj)


def decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _NP in obj:
            return obj[_NP].numpy().astype(np.dtype(obj["dtype"]), copy=True)
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(decode(v) for v in obj)
    return obj


# ---- RNG state --------------------------------------------------------------------------------------
def global_rng_state() -> dict:
    """The global generators' state. LoopLab's own draws never use them (`looplab.agent.rng`); third-party code
    may (an env, a torch op that takes no generator), so a session saves them too."""
    out = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_global_rng_state(d: dict) -> None:
    py = d["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = d["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
    torch.set_rng_state(d["torch"])
    if "cuda" in d and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(d["cuda"])


# ---- env state ----------------------------------------------------------------------------------
def env_state(env: Any) -> dict:
    """The state of a looplab Env: tracker, each sub-env's wrapper chain, the vector env's wrappers, and the
    env transforms' states by name."""
    venv = env.venv
    subs = env.sub_env_states()
    vec_layers = []
    layer = venv
    while isinstance(layer, gym.vector.VectorWrapper):
        vec_layers.append(object_state(layer)[0])
        layer = layer.env
    return {
        "tracker": {"ep_return": env._ep_return, "ep_len": env._ep_len, "returns": list(env.returns),
                    "episodes": env.episodes, "seeded": env._seeded},
        "subs": subs,
        "vector_wrappers": vec_layers,
        "transforms": env.state_dict(),
        "lives": getattr(env, "_lives", None),
        "pending_resets": env.pending_resets,
        "vector_action_space": venv.action_space.np_random.bit_generator.state,
        "async": not subs,
    }


def transform_state(d: dict) -> dict | None:
    """The env transforms' states in a saved env state (`normalizers` in checkpoints written before the
    transform chain, under the same names)."""
    return d.get("transforms", d.get("normalizers"))


def load_env_state(env: Any, d: dict) -> np.ndarray | None:
    """Restore what was saved; returns a mask of sub-envs that must start a new episode (or None)."""
    t = d["tracker"]
    env._ep_return[:] = t["ep_return"]
    env._ep_len[:] = t["ep_len"]
    env.returns = deque(t["returns"], maxlen=env.returns.maxlen)
    env.episodes = int(t["episodes"])
    env._seeded = bool(t["seeded"])
    if transform_state(d) is not None:
        env.load_state_dict(transform_state(d))
    if hasattr(env, "_lives"):
        env._lives = d.get("lives")
    venv = env.venv
    venv.action_space.np_random.bit_generator.state = d["vector_action_space"]
    layer = venv
    for st in d["vector_wrappers"]:
        set_object_state(layer, st)
        layer = layer.env
    if d.get("pending_resets") is not None:
        env.set_pending_resets(d["pending_resets"])
    exact = None if d["async"] else env.load_sub_env_states(d["subs"])
    if exact is None:
        log.warning("env %s: sub-env state not saved (native vector env); every env starts a new episode", env.name)
        return np.ones(env.num_envs, dtype=bool)
    restart = ~exact
    if restart.any():
        log.warning("env %s: the internal state of sub-env(s) %s cannot be restored exactly; they start their "
                    "next episode (the unfinished episode is not counted)", env.name, np.flatnonzero(restart).tolist())
    return restart if restart.any() else None


def restart_envs(env: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Start a new episode in the sub-envs of `mask` (each with its own, restored, np_random)."""
    firsts = env.reset_sub_envs(mask)
    if firsts is None:
        return env.reset()
    obs = obs.copy()
    for i, first in zip(np.flatnonzero(mask), firsts, strict=True):
        obs[i] = env.restart(i, first)
        env._ep_return[i] = 0.0
        env._ep_len[i] = 0
    return obs


# ---- files ----------------------------------------------------------------------------------------
def save(path: Path, state: dict) -> None:
    io.torch_save(path, encode({"version": VERSION, **state}))


def load(path: Path) -> dict:
    try:
        d = io.torch_load(path)
    except Exception as e:  # a truncated or foreign file: say which, never unpickle arbitrary code
        raise LoopLabError(f"cannot load checkpoint {path}: {str(e).splitlines()[0] if str(e) else e!r}") from None
    if not isinstance(d, dict) or d.get("version") != VERSION:
        raise LoopLabError(f"checkpoint {path} has an unknown format")
    return decode(d)
