"""Memory a run will hold, estimated before it starts, and refused when it cannot fit.

Per session: the process itself (Python, PyTorch, the libraries), its nets with gradients and Adam's two
moments, its memory when full (`agent.memory.max_size` transitions; frame-stacked images stored once),
its envs (per-env costs measured per family) and env worker processes, and the vector env's observation
buffers; times the sessions that run at once. That is compared with what is available: MemAvailable
(/proc/meminfo), the cgroup's limit where one is set, or LOOPLAB_MEMORY_LIMIT (bytes, or with a K/M/G/T
suffix) where given.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.memory import memory_class
from looplab.env import Clock
from looplab.env.make import env_family, probe_env, vector_plan
from looplab.env.pool import usable_cores
from looplab.errors import SpecError
from looplab.io import format_bytes
from looplab.spec.schema import Spec

log = logging.getLogger("looplab")
MiB = 1024**2
LIMIT_VAR = "LOOPLAB_MEMORY_LIMIT"
# resident memory measured on Linux x86-64 (Python 3.11, PyTorch 2.13 CPU, Gymnasium 1.4, MuJoCo 3):
# a session process after imports, an env worker process after imports, and each env once stepped
SESSION_PROCESS = 350 * MiB
PARENT_PROCESS = 300 * MiB  # the command itself and its progress manager, when sessions run in processes
ENV_WORKER_PROCESS = 80 * MiB
PER_ENV = {"mujoco": int(1.25 * MiB), "atari": 2 * MiB, "box2d": 128 * 1024, "classic_control": 8 * 1024,
           "toy_text": 8 * 1024, "other": 1 * MiB}
OBS_COPIES = 4  # the vector env's buffer, the copy returned, next_state, the normalized observation


@dataclasses.dataclass
class MemoryEstimate:
    """Bytes per part of one session, the sessions at once, and the total."""

    process: int
    nets: int
    memory: int
    envs: int
    env_workers: int
    buffers: int
    sessions: int
    parent: int

    @property
    def session(self) -> int:
        return self.process + self.nets + self.memory + self.envs + self.env_workers + self.buffers

    @property
    def total(self) -> int:
        return self.session * self.sessions + self.parent

    def as_dict(self) -> dict[str, int]:
        return {**dataclasses.asdict(self), "session": self.session, "total": self.total}

    def describe(self) -> str:
        parts = {"replay/memory": self.memory, "envs": self.envs + self.env_workers + self.buffers,
                 "nets": self.nets, "process": self.process}
        detail = ", ".join(f"{k} {format_bytes(v)}" for k, v in parts.items() if v)
        each = f"{self.sessions} session(s) x {format_bytes(self.session)}"
        return f"about {format_bytes(self.total)} ({each}: {detail})"


def sessions_at_once(spec: Spec, mode: str) -> int:
    if mode == "dev":
        return 1
    # Hogwild workers all run at once (looplab.experiment.hogwild)
    return spec.meta.max_session if spec.meta.distributed else min(spec.meta.max_session, usable_cores())


def session_env_workers(spec: Spec, sessions: int) -> int:
    """Env worker processes per session: meta.env_workers, else the cores shared by the sessions at once."""
    return spec.meta.env_workers or max(1, usable_cores() // sessions)


def estimate(spec: Spec, mode: str) -> MemoryEstimate:
    """What a dev or train run of `spec` will hold at most (resident memory)."""
    info = probe_env(spec)
    sessions = sessions_at_once(spec, mode)
    plan, workers = vector_plan(spec.env, session_env_workers(spec, sessions))
    num_envs = spec.env.num_envs
    dtype = getattr(info.observation_space, "dtype", None)
    obs_nbytes = (np.dtype(dtype).itemsize if dtype is not None else 4) * int(np.prod(info.state_shape))
    memory = memory_class(spec.memory.name, info).estimate_nbytes(spec.memory, info, spec.algorithm)
    return MemoryEstimate(
        process=SESSION_PROCESS, nets=_nets_nbytes(spec, info), memory=memory,
        envs=num_envs * PER_ENV[env_family(spec.env.name)],
        env_workers=workers * ENV_WORKER_PROCESS if plan == "pool" else 0,
        buffers=OBS_COPIES * num_envs * obs_nbytes, sessions=sessions,
        parent=PARENT_PROCESS if mode != "dev" and spec.meta.max_session > 1 else 0)  # sessions in processes


def _nets_nbytes(spec: Spec, info: Any) -> int:
    """Parameters x 4 bytes x 4 (weights, gradients, Adam's two moments), of the nets the agent builds with
    a memory of one batch and one env (the nets do not depend on either). An agent that cannot be built (a net
    too large to allocate, say) is refused here, before its run folder exists."""
    small = spec.model_copy()
    if "max_size" in type(spec.memory).model_fields and spec.memory.max_size is not None:
        # the smallest memory a batch can be drawn from
        small.memory = spec.memory.model_copy(update={"max_size": int(getattr(spec.memory, "batch_size", 1) or 1)})
    one_env = dataclasses.replace(info, num_envs=1)
    try:
        agent = ALGORITHMS.get(spec.algorithm.name)(small, one_env, Clock(num_envs=1), 0)
    except SpecError:
        raise
    except (RuntimeError, ValueError, TypeError, MemoryError) as e:
        errors = e.errors() if isinstance(e, pydantic.ValidationError) else None
        first = errors[0]["msg"] if errors else (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SpecError(f"the agent cannot be built: {first[:300]}", path="agent.net") from None
    params = sum(p.numel() for net in agent.nets().values() for p in net.parameters())
    return int(params) * 4 * 4


# ---- what is available ------------------------------------------------------------------------------
def parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(?:i?B)?\s*", text, re.I)
    if not m:
        raise ValueError(f"{LIMIT_VAR}={text!r}: expected bytes, e.g. 8G or 512M")
    return int(float(m.group(1)) * 1024 ** " KMGT".index((m.group(2) or " ").upper()))


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2 or v1), or None when there is no limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    root = Path("/sys/fs/cgroup")
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        rel = rel.lstrip("/")
        if controllers == "":  # v2
            pairs = [(root / rel / "memory.max", root / rel / "memory.current"),
                     (root / "memory.max", root / "memory.current")]
        elif "memory" in controllers.split(","):  # v1
            pairs = [(root / "memory" / rel / "memory.limit_in_bytes", root / "memory" / rel / "memory.usage_in_bytes"),
                     (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes")]
        else:
            continue
        for limit_path, usage_path in pairs:
            limit, usage = _read_int(limit_path), _read_int(usage_path)
            if limit is not None and limit < 2**60:  # "max" or a huge number: no limit
                return max(0, limit - (usage or 0))
    return None


def available_memory() -> tuple[int, str]:
    """(bytes available for a new run, where that figure comes from)."""
    if os.environ.get(LIMIT_VAR):
        return parse_bytes(os.environ[LIMIT_VAR]), LIMIT_VAR
    avail, source = None, "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail, source = int(line.split()[1]) * 1024, "MemAvailable"
    except OSError:
        pass
    room = _cgroup_room()
    if room is not None and (avail is None or room < avail):
        avail, source = room, "cgroup memory limit"
    return (avail if avail is not None else 2**62), source


def check_memory(spec: Spec, mode: str, file: str | None = None, force: bool = False) -> MemoryEstimate:
    """Refuse (one line, exit 2) a run whose estimate exceeds the memory available, unless `force`."""
    try:
        est = estimate(spec, mode)
    except SpecError as e:
        raise e.located(file, spec.name) from None
    avail, source = available_memory()
    if est.total > avail and not force:
        parts = {"agent.memory.max_size": est.memory, "env.num_envs": est.envs + est.env_workers + est.buffers,
                 "agent.net": est.nets}
        keys = [k for k, v in parts.items() if v >= 0.1 * est.session and v == max(parts.values())]
        keys += ["meta.max_session"] if est.sessions > 1 else []
        lower = f"lower {' or '.join(keys)}, or " if keys else ""
        raise SpecError(f"needs {est.describe()} of memory but {format_bytes(avail)} is available ({source}); "
                        f"{lower}run with --force", file=file, spec=spec.name)
    return est
