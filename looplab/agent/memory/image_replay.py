"""ImageReplay: a Replay for frame-stacked image states that stores every frame once, as uint8.

A stacked state (f[t-K+1] .. f[t]) and its successor (f[t-K+2] .. f[t+1]) share K-1 frames, and
consecutive transitions share all but one. So each env keeps a ring of single frames: a vector step
writes one new frame per env (the newest frame of next_state) plus, where an episode starts, the K
frames of its first state. A transition keeps only the ring position of its state's newest frame;
states and next states are gathered from the ring when sampled. Memory is about one frame per
transition instead of 2K (SLM Lab issue #165: 1M Atari transitions took ~50 GB).

A transition whose oldest frame was overwritten (the ring holds a few more frames than transitions,
to absorb the extra frames written at episode starts) is not sampled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from looplab.agent.memory.base import MEMORIES, transition_nbytes
from looplab.agent.memory.replay import Replay, ReplayConfig


@MEMORIES.register("ImageReplay")
class ImageReplay(Replay):
    fields = ("actions", "rewards", "terminateds", "truncateds")

    @classmethod
    def estimate_nbytes(cls, config: ReplayConfig, env_info: Any, algorithm: Any) -> int:
        n = env_info.num_envs
        max_size = max(n, int(config.max_size) // n * n)
        shape = env_info.state_shape
        per_env = max_size // n
        ring = per_env + per_env // 16 + 2 * int(shape[0])
        frames = n * ring * int(np.prod(shape[1:]))
        return frames + max_size * (8 + transition_nbytes(env_info, cls.fields))  # + ptr

    def __init__(self, config: ReplayConfig, env_info: Any, algorithm: Any, rng: np.random.Generator):
        n = env_info.num_envs
        # whole vector steps, so that slot i always belongs to env i % num_envs
        config = config.model_copy(update={"max_size": max(n, int(config.max_size) // n * n)})
        super().__init__(config, env_info, algorithm, rng)
        shape = env_info.state_shape
        self.stack = int(shape[0])
        per_env = self.max_size // n
        self.ring = per_env + per_env // 16 + 2 * self.stack
        self.frames = np.zeros((n, self.ring, *shape[1:]), dtype=np.uint8)
        self.written = np.zeros(n, dtype=np.int64)  # frames ever written per env
        self.ptr = np.zeros(self.max_size, dtype=np.int64)  # absolute ring position of each state's newest frame
        self.fresh = np.ones(n, dtype=bool)  # the next state of this env starts an episode
        self._envs = np.arange(n)
        self._offsets = np.arange(self.stack)
        self._checked = False

    def write(self, idx: np.ndarray, **step: np.ndarray) -> None:
        state, next_state = step["state"], step["next_state"]
        if not self._checked:
            self._check_stacked(state, next_state, step["terminated"] | step["truncated"])
        self.actions[idx] = step["action"]
        self.rewards[idx] = step["reward"]
        self.terminateds[idx] = step["terminated"]
        self.truncateds[idx] = step["truncated"]
        if self.fresh.any():
            envs = np.flatnonzero(self.fresh)
            for k in range(self.stack):
                self.frames[envs, (self.written[envs] + k) % self.ring] = state[envs, k]
            self.written[envs] += self.stack
        self.ptr[idx] = self.written - 1
        self.frames[self._envs, self.written % self.ring] = next_state[:, -1]
        self.written += 1
        self.fresh = np.asarray(step["terminated"], dtype=bool) | np.asarray(step["truncated"], dtype=bool)

    def _check_stacked(self, state: np.ndarray, next_state: np.ndarray, done: np.ndarray) -> None:
        keep = ~np.asarray(done, dtype=bool)
        if keep.any() and not np.array_equal(next_state[keep, :-1], state[keep, 1:]):
            raise ValueError("ImageReplay needs frame-stacked states (next_state[:-1] == state[1:]); "
                             "these image states are not stacked frames")
        self._checked = True

    def sample_indices(self, batch_size: int) -> np.ndarray:
        idx = super().sample_indices(batch_size)
        for _ in range(100):
            bad = ~self._valid(idx)
            if not bad.any():
                break
            idx[bad] = self.rng.integers(0, self.size, size=int(bad.sum()))
        return idx

    def _valid(self, idx: np.ndarray) -> np.ndarray:
        env = idx % self.num_envs
        return self.ptr[idx] - self.stack + 1 >= self.written[env] - self.ring

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        batch = super().gather(idx)
        env = (idx % self.num_envs)[:, None]
        pos = self.ptr[idx][:, None] - self.stack + 1 + self._offsets
        batch["states"] = self.frames[env, pos % self.ring]
        batch["next_states"] = self.frames[env, (pos + 1) % self.ring]
        return batch

    @property
    def nbytes(self) -> int:
        arrays = [self.frames, self.ptr, *(getattr(self, k) for k in self.fields)]
        return int(sum(a.nbytes for a in arrays))

    def state_dict(self, rows: bool = True) -> dict:
        d = super().state_dict(rows)
        d.update(written=self.written.copy(), fresh=self.fresh.copy(), checked=self._checked)
        if rows:
            used = int(min(self.written.max(), self.ring))  # the ring fills from position 0
            d.update(frames=self.frames[:, :used].copy(), ptr=self.ptr[:self.size].copy())
        return d

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        if "frames" in d:
            self.frames[:, :d["frames"].shape[1]] = d["frames"]
            self.ptr[:len(d["ptr"])] = d["ptr"]
        self.written[:] = d["written"]
        self.fresh[:] = d["fresh"]
        self._checked = bool(d["checked"])

    # rows: each transition's ring pointer with its fields; frames: env e's j-th frame ever written is at j % ring
    row_fields = property(lambda self: (*self.fields, "ptr"))

    def mark(self) -> dict:
        return {**super().mark(), "written": self.written.copy()}

    def rows_since(self, mark: dict | None) -> dict:
        chunk = super().rows_since(mark)
        first = np.maximum(mark["written"] if mark else 0, self.written - self.ring)
        chunk["frames_first"], chunk["frames_end"] = first, self.written.copy()
        chunk["frames"] = np.concatenate([self.frames[e, np.arange(a, b) % self.ring]
                                          for e, (a, b) in enumerate(zip(first, self.written, strict=True))])
        return chunk

    def load_rows(self, chunk: dict) -> None:
        super().load_rows(chunk)
        at = 0
        for e, (a, b) in enumerate(zip(chunk["frames_first"], chunk["frames_end"], strict=True)):
            self.frames[e, np.arange(a, b) % self.ring] = chunk["frames"][at:at + b - a]
            at += b - a
