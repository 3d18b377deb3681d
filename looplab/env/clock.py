"""The session clock: frames (all vector envs), vector steps, episodes, wall time, optimizer steps."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field


@dataclass
class Clock:
    num_envs: int = 1
    frame: int = 0
    t: int = 0
    epi: int = 0
    opt_step: int = 0
    wall_offset: float = 0.0
    _start: float = field(default_factory=time.perf_counter, repr=False)

    def tick(self) -> None:
        """One vector step: `num_envs` frames."""
        self.t += 1
        self.frame += self.num_envs

    @property
    def wall_t(self) -> float:
        return self.wall_offset + time.perf_counter() - self._start

    def state_dict(self) -> dict:
        d = asdict(self)
        d.pop("_start")
        d["wall_offset"] = self.wall_t
        return d

    def load_state_dict(self, d: dict) -> None:
        for k, v in d.items():
            setattr(self, k, v)
        self._start = time.perf_counter()
