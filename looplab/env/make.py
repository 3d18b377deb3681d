"""Make Gymnasium vector envs from an env spec.

Every env is a vector env (num_envs >= 1) with same-step autoreset, so a step returns both the
final observation of a finished episode (to store as next_state) and the first observation of
the next one. Episode returns are tracked on raw rewards, before any normalization wrapper.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from looplab.errors import SpecError

# keys of `env` that LoopLab consumes; every other key goes to gymnasium.make
RESERVED_KEYS = {
    "name", "max_frame", "num_envs", "max_t", "normalize_obs", "normalize_reward", "clip_obs",
    "clip_reward", "vectorization_mode", "frame_stack", "device", "reward_scale",
}
_CHEAP_FAMILIES = ("classic_control", "box2d", "toy_text")


def _register_families(env_id: str) -> None:
    if env_id.startswith("ALE/"):
        import ale_py

        gym.register_envs(ale_py)


def check_env_id(env_id: str) -> None:
    """Raise ValueError for an id Gymnasium does not know (used by the schema)."""
    _register_families(env_id)
    try:
        gym.spec(env_id)
    except gym.error.Error as e:
        raise ValueError(f"unknown Gymnasium env id '{env_id}': {str(e).splitlines()[0]}") from None


def env_kwargs(spec: Any) -> dict:
    """The `env` keys passed to gymnasium.make."""
    extra = spec.model_extra or {}
    return {k: v for k, v in extra.items() if k not in RESERVED_KEYS}


def action_type(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Discrete):
        return "discrete"
    if isinstance(space, gym.spaces.Box):
        return "continuous" if int(np.prod(space.shape)) == 1 else "multi_continuous"
    if isinstance(space, gym.spaces.MultiDiscrete):
        return "multi_discrete"
    if isinstance(space, gym.spaces.MultiBinary):
        return "multi_binary"
    raise SpecError(f"unsupported action space {space}", path="env.name")


@dataclass
class EnvInfo:
    """What an agent needs to know of an env to build itself."""

    name: str
    num_envs: int
    observation_space: gym.Space
    action_space: gym.Space

    @property
    def state_shape(self) -> tuple[int, ...]:
        return tuple(self.observation_space.shape or ())

    @property
    def action_type(self) -> str:
        return action_type(self.action_space)

    @property
    def is_discrete(self) -> bool:
        return self.action_type == "discrete"

    @property
    def action_dim(self) -> int:
        """Number of discrete actions, or dimensions of a continuous/multi action."""
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return int(space.n)
        return int(np.prod(space.shape))

    @property
    def is_image(self) -> bool:
        return len(self.state_shape) == 3


def _single_env_fn(env_id: str, kwargs: dict, render_mode: str | None = None):
    def make() -> gym.Env:
        _register_families(env_id)
        env = gym.make(env_id, render_mode=render_mode, **kwargs)
        space = env.action_space
        if isinstance(space, gym.spaces.Box) and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
            if not (np.allclose(space.low, -1.0) and np.allclose(space.high, 1.0)):
                env = gym.wrappers.RescaleAction(env, -1.0, 1.0)
        return env

    return make


def _make_error(e: Exception, env_id: str) -> SpecError:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return SpecError(f"gymnasium.make('{env_id}') failed: {msg}", path="env")


def probe_env(spec: Any) -> EnvInfo:
    """Make one env to check the spec's env keys and read its spaces; closes it again."""
    env_spec = spec.env
    try:
        env = _single_env_fn(env_spec.name, env_kwargs(env_spec))()
    except SpecError:
        raise
    except Exception as e:  # any error from an env constructor is a spec problem here
        raise _make_error(e, env_spec.name) from None
    try:
        return EnvInfo(env_spec.name, env_spec.num_envs, env.observation_space, env.action_space)
    finally:
        env.close()


class Env:
    """A vector env with raw episode-return tracking; arrays in, arrays out."""

    def __init__(self, spec: Any, seed: int, render_mode: str | None = None):
        env_spec = spec.env
        self.name = env_spec.name
        self.num_envs = env_spec.num_envs
        self.max_frame = env_spec.max_frame
        self.seed = seed
        fns = [_single_env_fn(self.name, env_kwargs(env_spec), render_mode) for _ in range(self.num_envs)]
        mode = env_spec.vectorization_mode
        if mode == "auto":
            family = gym.spec(self.name).entry_point
            cheap = isinstance(family, str) and any(f in family for f in _CHEAP_FAMILIES)
            mode = "sync" if cheap or self.num_envs < 8 else "async"
        cls = gym.vector.SyncVectorEnv if mode == "sync" else gym.vector.AsyncVectorEnv
        try:
            self.venv = cls(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        except Exception as e:
            raise _make_error(e, self.name) from None
        self.single_observation_space = self.venv.single_observation_space
        self.single_action_space = self.venv.single_action_space
        self.info = EnvInfo(self.name, self.num_envs, self.single_observation_space, self.single_action_space)
        self.venv.action_space.seed(seed)
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_len = np.zeros(self.num_envs, dtype=np.int64)
        self.returns: deque[float] = deque(maxlen=100)
        self.episodes = 0
        self._seeded = False

    def reset(self) -> np.ndarray:
        obs, _ = self.venv.reset(seed=None if self._seeded else self.seed)
        self._seeded = True
        self._ep_return[:] = 0.0
        self._ep_len[:] = 0
        return obs

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Returns (obs, reward, terminated, truncated, next_state).

        `obs` is what to act on next (a reset observation where an episode ended); `next_state` is the
        true successor of the previous state (the final observation where an episode ended).
        """
        obs, reward, terminated, truncated, info = self.venv.step(action)
        self._ep_return += reward
        self._ep_len += 1
        done = terminated | truncated
        next_state = obs
        if done.any():
            next_state = obs.copy()
            final = info["final_obs"]
            for i in np.flatnonzero(done):
                next_state[i] = final[i]
                self.returns.append(float(self._ep_return[i]))
                self.episodes += 1
            self._ep_return[done] = 0.0
            self._ep_len[done] = 0
        return obs, reward, terminated, truncated, next_state

    @property
    def total_reward(self) -> float:
        """Mean raw return of the last <=100 finished episodes (NaN before the first)."""
        return float(np.mean(self.returns)) if self.returns else float("nan")

    def sample_actions(self) -> np.ndarray:
        return self.venv.action_space.sample()

    def close(self) -> None:
        self.venv.close()
