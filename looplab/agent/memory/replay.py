"""Replay: a preallocated circular buffer of per-env transitions with uniform, vectorized sampling.

A vector step of N envs is written as N consecutive transitions. The memory is ready to train once
more than `training_start_step` transitions were seen and `training_frequency` more frames (transitions)
arrived since the last training call (SLM Lab's readiness, counted in frames for any num_envs).
`use_cer` (combined experience replay, Zhang & Sutton 2017) puts new transitions into the batch, in
its last slots. Which ones is `cer_items`: `unseen` (default, SLM Lab's behaviour) gives the next batch
every transition added since the previous batch (at most batch_size; the rest go into the batch after),
so with `training_iter` > 1 only the first batch of a training call holds new ones; `latest` puts the
newest vector step into every batch.
`state_dtype` is how states other than uint8 images are stored: float16 (SLM Lab's replay, half the memory,
about 3 significant digits, values beyond +-65504 stored as inf: the cast itself detects it and a warning says
so, once) or float32; a sampled batch holds float32 either way.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from pydantic import model_validator

from looplab.agent.memory.base import (
    MEMORIES,
    Memory,
    MemoryConfig,
    action_spec,
    state_dtype,
    transition_nbytes,
)
from looplab.spec.schema import PositiveCount

log = logging.getLogger(__name__)
HALF_MAX = float(np.finfo(np.float16).max)


class ReplayConfig(MemoryConfig):
    batch_size: PositiveCount  # transitions per sampled batch
    max_size: PositiveCount  # capacity in transitions; the oldest are overwritten
    use_cer: bool = False  # combined experience replay: new transitions go into the batches
    # unseen: each batch gets the transitions added since the last one; latest: the newest vector step, always
    cer_items: Literal["unseen", "latest"] = "unseen"
    # states (and next states) other than uint8 images: float16 as SLM Lab stores them, or float32
    state_dtype: Literal["float16", "float32"] = "float16"

    @model_validator(mode="after")
    def _batch_fits(self) -> ReplayConfig:
        if self.batch_size > self.max_size:
            raise ValueError(f"batch_size ({self.batch_size}) is larger than the replay itself (max_size "
                             f"{self.max_size})")
        return self


@MEMORIES.register("Replay")
class Replay(Memory):
    """Circular [max_size, ...] arrays; `sample()` returns a flat batch plus the sampled `indices`."""

    Config = ReplayConfig
    # the stored fields; a subclass storing image frames once can drop "next_states" and override gather()
    fields: tuple[str, ...] = ("states", "actions", "rewards", "next_states", "terminateds", "truncateds")
    incremental = True

    @classmethod
    def storage_for(cls, env_info: Any) -> type[Memory]:
        if cls is Replay and env_info.is_image and state_dtype(env_info) == np.uint8:
            return MEMORIES.get("ImageReplay")  # frame-stacked images: store each frame once (image_replay.py)
        return cls

    @classmethod
    def estimate_nbytes(cls, config: ReplayConfig, env_info: Any, algorithm: Any) -> int:
        max_size = max(int(config.max_size), env_info.num_envs)
        return max_size * transition_nbytes(env_info, cls.fields, config.state_dtype)

    def __init__(self, config: ReplayConfig, env_info: Any, algorithm: Any, rng: np.random.Generator):
        super().__init__(config, env_info, algorithm, rng)
        self.batch_size = int(config.batch_size)
        self.max_size = max(int(config.max_size), self.num_envs)
        self.use_cer = config.use_cer
        self.cer_items = config.cer_items
        self.training_start_step = int(getattr(algorithm, "training_start_step", None) or self.batch_size)
        self.training_frequency = int(getattr(algorithm, "training_frequency", None) or 1)
        s_shape, s_dtype = env_info.state_shape, state_dtype(env_info, config.state_dtype)
        self.half_states = s_dtype == np.float16
        self.warned_range = False
        a_shape, a_dtype = action_spec(env_info)
        shapes = {"states": (s_shape, s_dtype), "next_states": (s_shape, s_dtype), "actions": (a_shape, a_dtype),
                  "rewards": ((), np.float32), "terminateds": ((), np.float32), "truncateds": ((), np.float32)}
        for k in self.fields:
            shape, dtype = shapes[k]
            setattr(self, k, np.zeros((self.max_size, *shape), dtype=dtype))
        self.head = 0  # next slot to write
        self.size = 0  # filled slots
        self.seen_size = 0  # transitions ever added
        self.since_train = 0
        self._ready = False
        self._slots = np.arange(self.num_envs)
        self.latest = np.arange(self.num_envs)  # slots of the newest vector step
        self.cer_seen = 0  # transitions (counted as seen_size counts) already put into a batch by CER

    # ---- storing ------------------------------------------------------------------------------
    def add(self, state: np.ndarray, action: np.ndarray, reward: np.ndarray, next_state: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray) -> None:
        idx = self.head + self._slots
        if idx[-1] >= self.max_size:
            idx = idx % self.max_size
        self.write(idx, state=state, action=action, reward=reward, next_state=next_state, terminated=terminated,
                   truncated=truncated)
        n = self.num_envs
        self.latest = idx
        self.head = (self.head + n) % self.max_size
        self.size = min(self.size + n, self.max_size)
        self.seen_size += n
        self.since_train += n
        self._ready = self.seen_size > self.training_start_step and self.since_train >= self.training_frequency
        if self._ready:
            self.since_train = 0

    def write(self, idx: np.ndarray, **step: np.ndarray) -> None:
        if self.half_states:  # the float16 cast reports an overflow itself: no check of the values per step
            try:
                with np.errstate(over="raise"):
                    self.states[idx] = step["state"]
                    self.next_states[idx] = step["next_state"]
            except FloatingPointError:
                with np.errstate(over="ignore"):
                    self.states[idx] = step["state"]
                    self.next_states[idx] = step["next_state"]
                self.warn_half_range()
        else:
            self.states[idx] = step["state"]
            self.next_states[idx] = step["next_state"]
        self.actions[idx] = step["action"]
        self.rewards[idx] = step["reward"]
        self.terminateds[idx] = step["terminated"]
        self.truncateds[idx] = step["truncated"]

    def warn_half_range(self) -> None:
        """Once: a state held a value float16 cannot (beyond +-65504), stored as inf."""
        if not self.warned_range:
            self.warned_range = True
            log.warning("a state holds values beyond float16's range (+-%d), which the replay stores as inf; "
                        "set agent.memory.state_dtype: float32", HALF_MAX)

    @property
    def ready(self) -> bool:
        return self._ready

    # ---- sampling -----------------------------------------------------------------------------
    def sample_indices(self, batch_size: int) -> np.ndarray:
        idx = self.rng.integers(0, self.size, size=batch_size)
        self.apply_cer(idx)
        return idx

    def apply_cer(self, idx: np.ndarray) -> int:
        """With `use_cer`, overwrite the last slots of `idx` with new transitions; returns how many."""
        if not self.use_cer:
            return 0
        if self.cer_items == "latest":
            k = min(len(self.latest), len(idx))
            idx[len(idx) - k:] = self.latest[:k]
            return k
        first = max(self.cer_seen, self.seen_size - self.size)  # older unseen ones were overwritten
        k = min(self.seen_size - first, len(idx))
        # transition number n sits in slot n % max_size (writes start at slot 0 and wrap)
        idx[len(idx) - k:] = (first + np.arange(k)) % self.max_size
        self.cer_seen = first + k
        return k

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        batch = {k: getattr(self, k)[idx] for k in self.fields}
        if self.half_states:
            for k in ("states", "next_states"):
                if k in batch:
                    batch[k] = batch[k].astype(np.float32)
        return batch

    def sample(self, batch_size: int | None = None) -> dict[str, np.ndarray]:
        idx = self.sample_indices(batch_size or self.batch_size)
        batch = self.gather(idx)
        batch["indices"] = idx
        return batch

    # ---- checkpoint ---------------------------------------------------------------------------
    def state_dict(self, rows: bool = True) -> dict:
        """Counters; with `rows`, also the stored transitions (else see `rows_since`). The sampling stream is
        the session's, saved with it."""
        n = self.size
        d = {"head": self.head, "size": n, "seen_size": self.seen_size, "since_train": self.since_train,
             "ready": self._ready, "latest": self.latest.copy(), "cer_seen": self.cer_seen}
        if rows:
            d.update({k: getattr(self, k)[:n].copy() for k in self.fields})
        return d

    def load_state_dict(self, d: dict) -> None:
        n = int(d["size"])
        for k in self.fields:
            if k in d:
                getattr(self, k)[:n] = d[k]
        self.head, self.size, self.seen_size = int(d["head"]), n, int(d["seen_size"])
        self.since_train, self._ready = int(d["since_train"]), bool(d["ready"])
        self.latest = np.asarray(d["latest"])
        self.cer_seen = int(d.get("cer_seen", self.seen_size))

    # The k-th transition ever added sits in slot k % max_size, so the rows written since a checkpoint are
    # the transitions added since, minus those already overwritten again.
    row_fields = property(lambda self: self.fields)

    def mark(self) -> dict:
        """Where the stored rows stand now, for a later `rows_since`."""
        return {"seen": self.seen_size}

    def rows_since(self, mark: dict | None) -> dict:
        """The stored rows written since `mark` (None: every stored row), to restore with `load_rows`."""
        start = max(mark["seen"] if mark else 0, self.seen_size - self.size)
        slots = np.arange(start, self.seen_size) % self.max_size
        return {"start": start, "end": self.seen_size, **{k: getattr(self, k)[slots] for k in self.row_fields}}

    def load_rows(self, chunk: dict) -> None:
        slots = np.arange(chunk["start"], chunk["end"]) % self.max_size
        for k in self.row_fields:
            getattr(self, k)[slots] = chunk[k]
