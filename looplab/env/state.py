"""The state of one Gymnasium env, for checkpoints: its wrapper chain and its unwrapped numeric state.

Each layer's counters, arrays, `np_random` and spaces' RNGs are captured, and a MuJoCo env's physics
(qpos, qvel, act, time). An env holding state this cannot capture (a Box2D world, an emulator) is marked
inexact: on resume it starts its next episode. Plain data only (no torch), so that the env worker
processes of looplab.env.pool can run it next to their envs.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

# attributes never walked into: links to other layers, configuration, rendering and big read-only tables
_SKIP_ATTRS = {"env", "_env", "unwrapped", "spec", "_ext_spec", "metadata", "render_mode", "screen", "clock",
               "window", "viewer", "renderer", "mujoco_renderer", "_np_random_seed", "model", "data", "fullpath",
               "observation_space", "action_space", "_cached_spec", "frames"}
_SPACE_ATTRS = ("observation_space", "action_space", "_observation_space", "_action_space")
_PRIMITIVE = (bool, int, float, str, type(None))


def walkable(v: Any) -> bool:
    """A LoopLab or Gymnasium helper object whose attributes are state worth walking into."""
    mod = type(v).__module__ or ""
    return hasattr(v, "__dict__") and not isinstance(v, type) and (
        mod.startswith("looplab") or mod.startswith("gymnasium"))


def object_state(obj: Any, depth: int = 2) -> tuple[dict, bool]:
    """Numeric attributes, arrays, RNGs and (recursively) small gymnasium/looplab helper objects.

    Returns (state, exact): `exact` is False when the object holds state this cannot capture
    (a physics engine's objects, for instance).
    """
    out: dict[str, Any] = {}
    exact = True
    for k, v in vars(obj).items():
        if k in _SKIP_ATTRS:
            continue
        if isinstance(v, np.random.Generator):
            out[k] = {"__rng__": v.bit_generator.state}
        elif isinstance(v, _PRIMITIVE) or isinstance(v, (np.ndarray, np.generic)):
            out[k] = v
        elif isinstance(v, (list, tuple, deque)) and all(isinstance(x, (*_PRIMITIVE, np.generic, np.ndarray))
                                                         for x in v):
            out[k] = {"__seq__": type(v).__name__, "items": list(v),
                      "maxlen": v.maxlen if isinstance(v, deque) else None}
        elif isinstance(v, dict) and all(isinstance(x, (*_PRIMITIVE, np.generic, np.ndarray)) for x in v.values()):
            out[k] = {"__dict__": dict(v)}
        elif depth > 0 and walkable(v):
            sub, sub_exact = object_state(v, depth - 1)
            out[k] = {"__obj__": sub}
            exact = exact and sub_exact
        elif type(v).__module__.split(".")[0] in ("Box2D", "ale_py"):
            exact = False
    for k in _SPACE_ATTRS:
        space = vars(obj).get(k)
        if space is not None and getattr(space, "_np_random", None) is not None:
            out[f"{k}._np_random"] = {"__rng__": space._np_random.bit_generator.state}
    return out, exact


def set_object_state(obj: Any, state: dict) -> None:
    for k, v in state.items():
        if k.endswith("._np_random"):
            space = getattr(obj, k.removesuffix("._np_random"), None)
            if space is not None:
                space.np_random.bit_generator.state = v["__rng__"]
            continue
        cur = vars(obj).get(k)
        if isinstance(v, dict) and "__rng__" in v:
            if isinstance(cur, np.random.Generator):
                cur.bit_generator.state = v["__rng__"]
            else:
                setattr(obj, k, np.random.Generator(getattr(np.random, v["__rng__"]["bit_generator"])()))
                getattr(obj, k).bit_generator.state = v["__rng__"]
        elif isinstance(v, dict) and "__obj__" in v:
            if cur is not None:
                set_object_state(cur, v["__obj__"])
        elif isinstance(v, dict) and "__seq__" in v:
            items = v["items"]
            kind = v["__seq__"]
            setattr(obj, k, deque(items, maxlen=v["maxlen"]) if kind == "deque" else
                    tuple(items) if kind == "tuple" else list(items))
        elif isinstance(v, dict) and "__dict__" in v:
            setattr(obj, k, dict(v["__dict__"]))
        elif isinstance(v, np.ndarray) and isinstance(cur, np.ndarray) and cur.shape == v.shape and cur.dtype == v.dtype:
            cur[...] = v  # in place: other objects may hold a reference to this buffer
        else:
            setattr(obj, k, v)


def _layers(env: Any) -> list[Any]:
    """A gymnasium env's wrapper chain, outermost first, ending with the unwrapped env."""
    out = [env]
    while isinstance(env, gym.Wrapper):
        env = env.env
        out.append(env)
    return out


def _mujoco_state(unwrapped: Any) -> dict | None:
    data = getattr(unwrapped, "data", None)
    if data is None or not hasattr(data, "qpos") or not hasattr(unwrapped, "set_state"):
        return None
    return {"qpos": data.qpos.copy(), "qvel": data.qvel.copy(), "act": data.act.copy(), "time": float(data.time)}


def sub_env_state(sub: gym.Env) -> dict:
    """One env's state: {"layers": per wrapper, outermost first; "exact": restorable; "mujoco": physics}."""
    layers, exact = [], True
    for layer in _layers(sub):
        st, ex = object_state(layer)
        layers.append(st)
        exact = exact and ex
    mj = _mujoco_state(sub.unwrapped)
    return {"layers": layers, "exact": exact or mj is not None, "mujoco": mj}


def set_sub_env_state(sub: gym.Env, saved: dict) -> bool:
    """Restore what `sub_env_state` saved; returns whether the env is now exactly where it was."""
    for layer, st in zip(_layers(sub), saved["layers"], strict=False):
        set_object_state(layer, st)
    mj = saved.get("mujoco")
    if mj is not None:
        sub.unwrapped.set_state(mj["qpos"], mj["qvel"])
        sub.unwrapped.data.act[:] = mj["act"]
        sub.unwrapped.data.time = mj["time"]
    return bool(saved["exact"])


def reset_sub_env(sub: gym.Env, reset: bool = True) -> Any:
    """Start the env's next episode (with its own, restored, np_random); returns the first observation."""
    return sub.reset()[0] if reset else None
