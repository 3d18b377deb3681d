"""A vector env whose envs are stepped by a few worker processes, each stepping a slice of them in turn.

Gymnasium's AsyncVectorEnv starts one process per env: `num_envs: 2048` means 2048 processes. Here at
most one worker per usable core (or `meta.env_workers`) owns a SyncVectorEnv over a contiguous slice of
the envs. Observations, rewards and done flags come back through shared memory; actions and infos go
through each worker's pipe. A worker's envs are made, seeded and stepped exactly as in one
SyncVectorEnv, so both return the same observations for the same seed, and `call_envs` runs a function
next to each env (the checkpoint's state capture and restore).

Workers die with their parent, however it dies: the kernel sends them SIGKILL when the thread that
started them ends (PR_SET_PDEATHSIG), and a worker whose pipe closes exits.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import CloudpickleWrapper, batch_space, create_empty_array

_PR_SET_PDEATHSIG = 1


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def worker_count(num_envs: int, requested: int | None = None) -> int:
    """Worker processes for `num_envs` envs: `requested` (meta.env_workers), else one per usable core."""
    return max(1, min(num_envs, requested or usable_cores()))


def die_with_parent(parent_pid: int | None = None) -> None:
    """In a child process: be SIGKILLed when the parent dies (Linux), and exit now if it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the closed pipe still ends env workers
        pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def _shared(ctx: Any, shape: tuple[int, ...], dtype: np.dtype) -> tuple[Any, tuple[int, ...], str]:
    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return ctx.RawArray(ctypes.c_uint8, max(1, size)), shape, np.dtype(dtype).str


def _view(buf: tuple[Any, tuple[int, ...], str]) -> np.ndarray:
    raw, shape, dtype = buf
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(raw, dtype=np.dtype(dtype), count=count).reshape(shape)


def _worker(env_fns: CloudpickleWrapper, start: int, stop: int, buffers: dict, pipe: Any, parent_pid: int,
            autoreset_mode: str) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the session, which closes its workers
    obs, rewards, terminated, truncated = (_view(buffers[k])[start:stop]
                                           for k in ("obs", "rewards", "terminated", "truncated"))
    envs = None
    try:
        envs = gym.vector.SyncVectorEnv(env_fns.fn, copy=False, autoreset_mode=autoreset_mode)
        pipe.send(("ok", None))
        while True:
            try:
                command, arg = pipe.recv()
            except (EOFError, OSError):  # the parent is gone
                return
            try:
                if command == "step":
                    obs[...], rewards[...], terminated[...], truncated[...], info = envs.step(arg)
                    pipe.send(("ok", info))
                elif command == "reset":
                    obs[...], info = envs.reset(**arg)
                    pipe.send(("ok", info))
                elif command == "autoreset":
                    envs._autoreset_envs = np.array(arg, dtype=bool)
                    pipe.send(("ok", None))
                elif command == "call":
                    fn, args = arg
                    pipe.send(("ok", [fn(env, *a) for env, a in zip(envs.envs, args, strict=True)]))
                elif command == "close":
                    pipe.send(("ok", None))
                    return
            except Exception as e:  # reported to the parent, which raises it
                pipe.send(("error", (f"{type(e).__name__}: {e}", traceback.format_exc())))
    except Exception as e:  # the envs could not be made
        pipe.send(("error", (f"{type(e).__name__}: {e}", traceback.format_exc())))
    finally:
        if envs is not None:
            envs.close()
        pipe.close()


class EnvWorkerError(RuntimeError):
    """An env raised in a worker process, or a worker died."""


class WorkerPoolVectorEnv(gym.vector.VectorEnv):
    """`num_envs` envs stepped by `num_workers` processes, each owning a SyncVectorEnv over its slice."""

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], num_workers: int,
                 autoreset_mode: gym.vector.AutoresetMode = gym.vector.AutoresetMode.SAME_STEP):
        self.num_envs = len(env_fns)
        self.autoreset_mode = gym.vector.AutoresetMode(autoreset_mode)
        self.metadata = {"autoreset_mode": self.autoreset_mode}
        dummy = env_fns[0]()
        self.single_observation_space = dummy.observation_space
        self.single_action_space = dummy.action_space
        self.metadata.update({k: v for k, v in dummy.metadata.items() if k != "autoreset_mode"})
        self.render_mode = dummy.render_mode
        dummy.close()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        template = create_empty_array(self.single_observation_space, self.num_envs)
        if not isinstance(template, np.ndarray):
            raise ValueError(f"the env worker pool needs array observations, not {self.single_observation_space}; "
                             "use env.vectorization_mode: sync")
        ctx = mp.get_context("spawn")  # never fork a process that runs torch threads
        self._buffers = {"obs": _shared(ctx, template.shape, template.dtype),
                         "rewards": _shared(ctx, (self.num_envs,), np.float64),
                         "terminated": _shared(ctx, (self.num_envs,), np.bool_),
                         "truncated": _shared(ctx, (self.num_envs,), np.bool_)}
        self._obs, self._rewards, self._terminated, self._truncated = (
            _view(self._buffers[k]) for k in ("obs", "rewards", "terminated", "truncated"))
        bounds = np.linspace(0, self.num_envs, worker_count(self.num_envs, num_workers) + 1).round().astype(int)
        self.slices = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.pipes: list[Any] = []
        self.processes: list[Any] = []
        self.closed = False
        try:
            for start, stop in self.slices:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, name=f"looplab-envs-{start}-{stop}", daemon=True,
                                   args=(CloudpickleWrapper(list(env_fns[start:stop])), start, stop,
                                         self._buffers, child, os.getpid(), self.autoreset_mode.value))
                proc.start()
                child.close()
                self.pipes.append(parent)
                self.processes.append(proc)
            self._gather()
        except BaseException:
            self.close(terminate=True)
            raise

    # ---- the vector env API ----------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None or isinstance(seed, int):
            seeds = [None] * self.num_envs if seed is None else [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
        for pipe, (start, stop) in zip(self.pipes, self.slices, strict=True):
            pipe.send(("reset", {"seed": seeds[start:stop], "options": options}))
        infos = self._gather()
        return self._obs.copy(), self._merge(infos)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        for pipe, (start, stop) in zip(self.pipes, self.slices, strict=True):
            pipe.send(("step", actions[start:stop]))
        infos = self._gather()
        return (self._obs.copy(), self._rewards.copy(), self._terminated.copy(), self._truncated.copy(),
                self._merge(infos))

    def call_envs(self, fn: Callable[..., Any], args: Sequence[tuple] | None = None) -> list[Any]:
        """`fn(env, *args[i])` for each env i, run in its worker; `fn` must be picklable (module level)."""
        args = list(args) if args is not None else [()] * self.num_envs
        for pipe, (start, stop) in zip(self.pipes, self.slices, strict=True):
            pipe.send(("call", (fn, args[start:stop])))
        return [r for part in self._gather() for r in part]

    def set_autoreset_envs(self, mask: np.ndarray) -> None:
        """Which envs each worker's SyncVectorEnv resets at its next step (next-step autoreset; a checkpoint)."""
        for pipe, (start, stop) in zip(self.pipes, self.slices, strict=True):
            pipe.send(("autoreset", np.asarray(mask[start:stop], dtype=bool)))
        self._gather()

    def close_extras(self, terminate: bool = False, **kwargs: Any) -> None:
        self.close(terminate=terminate)

    def close(self, terminate: bool = False, **kwargs: Any) -> None:  # type: ignore[override]
        if self.closed:
            return
        self.closed = True
        if not terminate:
            for pipe in self.pipes:
                try:
                    pipe.send(("close", None))
                except OSError:
                    pass
        for proc in self.processes:
            proc.join(timeout=0 if terminate else 5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for pipe in self.pipes:
            pipe.close()

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            self.close(terminate=True)

    # ---- helpers ----------------------------------------------------------------------------------
    def _gather(self) -> list[Any]:
        results, error = [], None
        for pipe, proc in zip(self.pipes, self.processes, strict=True):
            try:
                status, payload = pipe.recv()
            except (EOFError, OSError):
                status, payload = "error", (f"env worker {proc.name} died (exit code {proc.exitcode})", "")
            if status == "error" and error is None:
                error = payload
            results.append(payload)
        if error is not None:
            raise EnvWorkerError(error[0])
        return results

    def _merge(self, infos: list[dict]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for info, (start, stop) in zip(infos, self.slices, strict=True):
            _merge_info(out, info, start, stop, self.num_envs)
        return out


def _merge_info(out: dict, info: dict, start: int, stop: int, num_envs: int) -> dict:
    """Put one worker's SyncVectorEnv info (arrays over its slice) into the whole batch's info."""
    for key, value in info.items():
        if isinstance(value, dict):
            out[key] = _merge_info(out.get(key, {}), value, start, stop, num_envs)
            continue
        value = np.asarray(value)
        if key not in out:
            out[key] = (np.full(num_envs, None, dtype=object) if value.dtype == object
                        else np.zeros((num_envs, *value.shape[1:]), dtype=value.dtype))
        out[key][start:stop] = value
    return out
