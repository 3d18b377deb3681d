"""Make Gymnasium vector envs from an env spec.

Every env is a vector env (num_envs >= 1). With same-step autoreset a step returns both the final
observation of a finished episode (to store as next_state) and the first observation of the next one.
With next-step autoreset (`env.autoreset`, SLM Lab's vector envs) the step that ends an episode returns
its final observation, and the next step ignores its action, starts the next episode and returns its
first observation with reward 0, not done: a transition the agent stores and learns from as SLM Lab's
does. Episode returns are tracked on raw rewards; then the env's transform chain
(looplab.env.transforms) makes what the agent sees and learns from.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from looplab.env.atari import ATARI_VECTOR_ONLY_KEYS, atari_preprocess, game_over, is_atari
from looplab.env.pool import WorkerPoolVectorEnv, worker_count
from looplab.env.state import reset_sub_env, set_sub_env_state, sub_env_state
from looplab.env.transforms import EnvContext, Step, build_chain, chain_space
from looplab.errors import SpecError
from looplab.spec.schema import EnvSpec, Spec

# `env` keys outside the fields of `EnvSpec` that LoopLab reads (`scale_obs`) or leaves out (`device`); every other
# extra key goes to gymnasium.make. The fields, the transforms' keys among them, are never extra keys.
RESERVED_KEYS = {"device", "scale_obs"}
log = logging.getLogger(__name__)
_CHEAP_FAMILIES = ("classic_control", "box2d", "toy_text")


def _register_families(env_id: str) -> None:
    if env_id.startswith("ALE/"):
        import ale_py

        gym.register_envs(ale_py)
    elif "mujoco" in str(getattr(gym.registry.get(env_id), "entry_point", "")):
        _route_mujoco_warnings()


@functools.cache
def _route_mujoco_warnings() -> None:
    """MuJoCo prints its warnings (such as a deprecated attribute in one of Gymnasium's model files) to the
    terminal once per process, env workers included; they go to the run's log instead, so --quiet is quiet."""
    import mujoco

    mujoco.set_mju_user_warning(lambda message: log.info("MuJoCo: %s", message))


def _native_atari() -> bool:
    try:
        from ale_py.vector_env import AtariVectorEnv  # noqa: F401
    except ImportError:
        return False
    return True


def check_env_id(env_id: str) -> None:
    """Raise ValueError for an id Gymnasium does not know (used by the schema)."""
    if env_id.startswith("playground/"):
        raise ValueError(f"'{env_id}' is a MuJoCo Playground env, which runs on JAX; LoopLab runs Gymnasium envs "
                         "only (SLM Lab's playground specs run here with e.g. -s env=HalfCheetah-v5)")
    _register_families(env_id)
    try:
        entry = str(gym.spec(env_id).entry_point)
    except gym.error.Error as e:
        if _is_legacy_atari(env_id):
            raise ValueError(_legacy_atari_message(env_id)) from None
        raise ValueError(f"unknown Gymnasium env id '{env_id}': {str(e).splitlines()[0]}") from None
    if "ale_py" in entry and not is_atari(env_id):  # known here only once an ALE/ id registered ale-py's envs
        raise ValueError(_legacy_atari_message(env_id))


def _is_legacy_atari(env_id: str) -> bool:
    """An id of ale-py's pre-v5 Atari envs (Pong-v0, PongNoFrameskip-v4, ...): known once ale-py registers."""
    try:
        import ale_py
    except ImportError:
        return False
    gym.register_envs(ale_py)
    return "ale_py" in str(getattr(gym.registry.get(env_id), "entry_point", ""))


def _legacy_atari_message(env_id: str) -> str:
    game = re.sub(r"(NoFrameskip|Deterministic)?-v\d+$", "", env_id)
    return (f"'{env_id}' is one of ale-py's legacy Atari ids (raw RGB frames, no vector env); LoopLab runs Atari as "
            f"ALE/...-v5 with its preprocessing: --set env.name=ALE/{game}-v5")


def env_kwargs(spec: EnvSpec) -> dict:
    """The `env` keys passed to gymnasium.make: the env spec's extra keys, less RESERVED_KEYS."""
    extra = spec.model_extra or {}
    kwargs = {k: v for k, v in extra.items() if k not in RESERVED_KEYS}
    if spec.max_t is not None and spec.max_t != _registered_time_limit(spec.name):
        kwargs["max_episode_steps"] = spec.max_t  # a time limit of max_t agent steps per episode
    return kwargs


def _registered_time_limit(env_id: str) -> int | None:
    try:
        _register_families(env_id)
        return gym.spec(env_id).max_episode_steps
    except Exception:  # an unknown id: check_env_id says so where it matters
        return None


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
    scale_obs: bool = False  # uint8 images are divided by 255 before the net (env key `scale_obs`)

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


def autoreset_mode(env_spec: EnvSpec) -> str:
    """`same_step` or `next_step`: the spec's `env.autoreset`, else SLM Lab's: its vector envs (num_envs > 1)
    autoreset in the next step, Gymnasium's default there; its single env is reset by the loop in the same
    step. Atari resets in the same step (a lost life under life_loss_info is an episode end, not a reset)."""
    if env_spec.autoreset is not None:
        return env_spec.autoreset
    return "next_step" if env_spec.num_envs > 1 and not is_atari(env_spec.name) else "same_step"


def single_env_fn(env_id: str, kwargs: dict, render_mode: str | None = None):
    def make() -> gym.Env:
        _register_families(env_id)
        atari = is_atari(env_id)
        make_kwargs = {k: v for k, v in kwargs.items() if not (atari and k in ATARI_VECTOR_ONLY_KEYS)}
        env = gym.make(env_id, render_mode=render_mode, **make_kwargs)
        if atari:
            env = atari_preprocess(env)
        space = env.action_space
        if isinstance(space, gym.spaces.Box) and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
            if not (np.allclose(space.low, -1.0) and np.allclose(space.high, 1.0)):
                # bounds in the space's own dtype: float64 ones make Box warn that it lowers their precision
                ones = np.ones(space.shape, dtype=space.dtype)
                env = gym.wrappers.RescaleAction(env, -ones, ones)
        return env

    return make


def _make_error(e: Exception, env_id: str) -> SpecError:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return SpecError(f"gymnasium.make('{env_id}') failed: {msg}", path="env")


def probe_env(spec: Spec) -> EnvInfo:
    """Make one env to check the spec's env keys and read its spaces; closes it again."""
    env_spec = spec.env
    try:
        env = single_env_fn(env_spec.name, env_kwargs(env_spec))()
    except SpecError:
        raise
    except Exception as e:  # any error from an env constructor is a spec problem here
        raise _make_error(e, env_spec.name) from None
    try:
        chain = build_chain(spec, EnvContext(env_spec.num_envs, env.observation_space, is_atari(env_spec.name)))
        return EnvInfo(env_spec.name, env_spec.num_envs, chain_space(chain, env.observation_space), env.action_space)
    finally:
        env.close()


def env_family(env_id: str) -> str:
    """'atari', 'mujoco', 'box2d', 'classic_control', 'toy_text' or 'other', from the env's entry point."""
    if is_atari(env_id):
        return "atari"
    _register_families(env_id)
    entry = gym.spec(env_id).entry_point
    entry = entry if isinstance(entry, str) else getattr(entry, "__module__", "") or ""
    return next((f for f in ("mujoco", *_CHEAP_FAMILIES) if f in entry), "other")


def vector_plan(env_spec: EnvSpec, env_workers: int | None = None, render_mode: str | None = None) -> tuple[str, int]:
    """How `Env` vectorizes: ('sync' | 'pool' | 'vector_entry_point', env worker processes).

    `auto` steps cheap envs (classic control, Box2D, toy text) and fewer than 8 envs in this process;
    others (`async`) on a few worker processes, each stepping a slice of the envs (looplab.env.pool).
    One worker would only add a process to what sync does here, so that is sync too.
    """
    mode = env_spec.vectorization_mode
    if mode == "auto" and is_atari(env_spec.name) and render_mode is None and _native_atari():
        return "vector_entry_point", 0
    if mode == "vector_entry_point":
        return mode, 0
    if mode == "auto":
        cheap = env_family(env_spec.name) in _CHEAP_FAMILIES
        mode = "sync" if cheap or env_spec.num_envs < 8 else "async"
    workers = worker_count(env_spec.num_envs, env_workers)
    return ("pool", workers) if mode == "async" and workers > 1 else ("sync", 0)


def _each_env(venv: gym.vector.VectorEnv, fn: Any, args: list[tuple] | None = None) -> list | None:
    """`fn(env, *args[i])` for each env i of the vector env, here or in its worker processes (None: the
    envs are out of reach)."""
    envs = getattr(venv.unwrapped, "envs", None)
    if envs is not None:
        return [fn(env, *a) for env, a in zip(envs, args or [()] * len(envs), strict=True)]
    if isinstance(venv, WorkerPoolVectorEnv):
        return venv.call_envs(fn, args)
    return None


class Env:
    """A vector env with raw episode-return tracking; arrays in, arrays out."""

    def __init__(self, spec: Spec, seed: int, render_mode: str | None = None, autoreset: str | None = None):
        """`autoreset` overrides the spec's (evaluation and enjoy run `same_step`: nothing learns from them)."""
        env_spec = spec.env
        self.name = env_spec.name
        self.num_envs = env_spec.num_envs
        self.max_frame = env_spec.max_frame
        self.seed = seed
        kwargs = env_kwargs(env_spec)
        self.atari = is_atari(self.name)
        self.next_step = (autoreset or autoreset_mode(env_spec)) == "next_step"
        gym_autoreset = gym.vector.AutoresetMode.NEXT_STEP if self.next_step else gym.vector.AutoresetMode.SAME_STEP
        mode, workers = vector_plan(env_spec, getattr(spec.meta, "env_workers", None), render_mode)
        try:
            if mode == "vector_entry_point":
                _register_families(self.name)
                # ale-py's native vector env: preprocessing in C++ threads; rewards stay raw (clipped below)
                if "max_episode_steps" in kwargs:  # ale-py counts emulator frames: agent steps x frameskip
                    steps = kwargs.pop("max_episode_steps")
                    kwargs["max_num_frames_per_episode"] = steps * int(kwargs.get("frameskip", 4))
                self.venv = gym.make_vec(self.name, num_envs=self.num_envs, vectorization_mode=mode,
                                         autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
                                         **{"reward_clipping": False, **kwargs})
            else:
                fns = [single_env_fn(self.name, kwargs, render_mode) for _ in range(self.num_envs)]
                if mode == "pool":
                    self.venv = WorkerPoolVectorEnv(fns, workers, autoreset_mode=gym_autoreset)
                else:
                    self.venv = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym_autoreset)
        except Exception as e:
            raise _make_error(e, self.name) from None
        self.single_observation_space = self.venv.single_observation_space
        self.single_action_space = self.venv.single_action_space
        self.venv.action_space.seed(seed)
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_len = np.zeros(self.num_envs, dtype=np.int64)
        self._pending = np.zeros(self.num_envs, dtype=bool)  # next_step: envs whose next step is their reset
        self.returns: deque[float] = deque(maxlen=100)
        self.episodes = 0
        self._seeded = False
        self._lives: np.ndarray | None = None
        self.scale_obs = bool(getattr(env_spec, "scale_obs", None) or (env_spec.model_extra or {}).get("scale_obs"))
        # what the agent sees and learns from; returns above are always tracked on raw rewards
        self.transforms = build_chain(spec, EnvContext(self.num_envs, self.single_observation_space, self.atari))
        state_space = chain_space(self.transforms, self.single_observation_space)
        self.info = EnvInfo(self.name, self.num_envs, state_space, self.single_action_space, self.scale_obs)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start every sub-env's episode; seeded from `seed` if given, else from the env's seed the first time."""
        obs, info = self.venv.reset(seed=seed if seed is not None else None if self._seeded else self.seed)
        self._seeded = True
        self._ep_return[:] = 0.0
        self._ep_len[:] = 0
        self._pending[:] = False
        self._lives = np.asarray(info["lives"]).copy() if "lives" in info else None
        for transform in self.transforms.values():
            obs = transform.reset(obs)
        return obs

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Returns (obs, reward, terminated, truncated, next_state).

        `obs` is what to act on next (a reset observation where an episode ended); `next_state` is the
        true successor of the previous state (the final observation where an episode ended).
        """
        obs, reward, terminated, truncated, info = self.venv.step(action)
        if self.next_step:
            return self._step_next(obs, reward, terminated, truncated)
        self._ep_return += reward
        self._ep_len += 1
        done = terminated | truncated
        next_state = obs
        ended = None
        if done.any():
            # an Atari episode under life_loss_info is one life; returns are reported per whole game
            lives = np.asarray(info["lives"]) if "lives" in info else None
            ended = game_over(terminated, truncated, lives, self._lives)
            # only a game over resets the env; after a lost life `obs` itself is the true next state
            # (ale-py's native vector env then puts a stale frame stack in final_obs)
            next_state = obs.copy()
            final = info["final_obs"]
            for i in np.flatnonzero(ended):
                next_state[i] = final[i]
            for i in np.flatnonzero(ended):
                self.returns.append(float(self._ep_return[i]))
                self.episodes += 1
            self._ep_return[ended] = 0.0
            self._ep_len[ended] = 0
        if "lives" in info:
            self._lives = np.asarray(info["lives"]).copy()
        if self.transforms:
            step = Step(obs, next_state, reward, done, done if ended is None else ended)
            for transform in self.transforms.values():
                transform.step(step)
            obs, reward, next_state = step.obs, step.reward, step.next_state
        return obs, reward, terminated, truncated, next_state

    def _step_next(self, obs: np.ndarray, reward: np.ndarray, terminated: np.ndarray,
                   truncated: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`step` under next-step autoreset. Where an episode ended, `obs` is its final observation (the next
        state and the state to act on); where one ended in the previous step, the env was reset instead of
        stepped: `obs` is the first observation of its next episode, the reward 0 and neither flag set, and
        the transforms start that env's new episode here."""
        restarted = self._pending
        self._ep_return += reward
        self._ep_len += ~restarted
        done = terminated | truncated
        if done.any():
            for i in np.flatnonzero(done):
                self.returns.append(float(self._ep_return[i]))
                self.episodes += 1
            self._ep_return[done] = 0.0
            self._ep_len[done] = 0
        self._pending = done
        next_state = obs
        if self.transforms:
            step = Step(obs, obs, reward, done, restarted)
            for transform in self.transforms.values():
                transform.step(step)
            obs, reward, next_state = step.obs, step.reward, step.next_state
            if restarted.any() and next_state is not obs:  # the stored successor of a reset step: its first state
                next_state = next_state.copy()
                next_state[restarted] = obs[restarted]
        return obs, reward, terminated, truncated, next_state

    @property
    def pending_resets(self) -> np.ndarray:
        """next_step: the envs whose episode ended in the last step, so that their next step resets them."""
        return self._pending.copy()

    def set_pending_resets(self, mask: np.ndarray) -> None:
        """Restore `pending_resets` (a checkpoint), here and in the vector env."""
        mask = np.asarray(mask, dtype=bool)
        self._pending = mask.copy()
        if not self.next_step:
            return
        if isinstance(self.venv, WorkerPoolVectorEnv):
            self.venv.set_autoreset_envs(mask)
        else:
            self.venv.unwrapped._autoreset_envs = mask.copy()

    @property
    def total_reward(self) -> float:
        """Mean raw return of the last <=100 finished episodes (NaN before the first)."""
        return float(np.mean(self.returns)) if self.returns else float("nan")

    def state_dict(self) -> dict:
        """Each transform's state by its registered name (what a checkpoint must restore for the agent to see
        the same inputs)."""
        return {name: transform.state_dict() for name, transform in self.transforms.items()}

    def load_state_dict(self, d: dict) -> None:
        """Restore the transforms named in `d`; the others keep their state."""
        for name, transform in self.transforms.items():
            if d.get(name) is not None:
                transform.load_state_dict(d[name])

    def restart(self, i: int, obs: np.ndarray) -> np.ndarray:
        """What the agent sees of env `i`'s first observation `obs` after `reset_sub_envs` started it alone."""
        for transform in self.transforms.values():
            obs = transform.restart(i, obs)
        return obs

    def sub_env_states(self) -> list[dict]:
        """Each env's own state (looplab.env.state), in order; empty where the vector env keeps them out of
        reach (ale-py's native vector env)."""
        return _each_env(self.venv, sub_env_state) or []

    def load_sub_env_states(self, saved: list[dict]) -> np.ndarray | None:
        """Restore what `sub_env_states` saved; returns which envs are exactly restored (None: none could be)."""
        if len(saved) != self.num_envs:
            return None
        exact = _each_env(self.venv, set_sub_env_state, [(st,) for st in saved])
        return None if exact is None else np.array(exact)

    def reset_sub_envs(self, mask: np.ndarray) -> np.ndarray | None:
        """Start a new episode in the envs of `mask`; returns their first observations (None: out of reach)."""
        firsts = _each_env(self.venv, reset_sub_env, [(bool(m),) for m in mask])
        if firsts is not None and self._pending[mask].any():
            self.set_pending_resets(self._pending & ~np.asarray(mask, dtype=bool))
        return None if firsts is None else np.array([first for first, m in zip(firsts, mask, strict=True) if m])

    def freeze(self) -> None:
        """Stop updating the transforms' statistics (enjoy / evaluation)."""
        for transform in self.transforms.values():
            transform.freeze()

    def sample_actions(self) -> np.ndarray:
        return self.venv.action_space.sample()

    def close(self) -> None:
        self.venv.close()
