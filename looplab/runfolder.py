"""The run folder: `data/{name}_{ts}/` with info/, graph/, model/, log/ (SLM Lab's layout and names)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from looplab.errors import LoopLabError

SUBDIRS = ("info", "graph", "model", "log")


def data_dir(cli_value: str | None = None) -> Path:
    return Path(cli_value or os.environ.get("LOOPLAB_DATA_DIR") or "data")


@dataclass
class RunPaths:
    root: Path
    name: str

    @classmethod
    def create(cls, data: Path, name: str) -> RunPaths:
        """A new run folder; the timestamp gets a suffix if another run took it this second."""
        ts = time.strftime("%Y_%m_%d_%H%M%S")
        root = data / f"{name}_{ts}"
        k = 1
        while root.exists():
            root = data / f"{name}_{ts}_{k}"
            k += 1
        try:
            for sub in SUBDIRS:
                (root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LoopLabError(f"cannot create run folder {root}: {e.strerror}") from None
        return cls(root, name)

    @property
    def ts(self) -> str:
        return self.root.name[len(self.name) + 1:]

    def prename(self, trial: int | None = None, session: int | None = None) -> str:
        out = self.name
        if trial is not None:
            out += f"_t{trial}"
        if session is not None:
            out += f"_s{session}"
        return out

    def file(self, sub: str | None, trial: int | None, session: int | None, suffix: str) -> Path:
        base = self.root / sub if sub else self.root
        return base / f"{self.prename(trial, session)}_{suffix}"

    def log_file(self, trial: int | None = None, session: int | None = None) -> Path:
        return self.root / "log" / f"{self.prename(trial, session)}.log"

    def session_df(self, trial: int, session: int, kind: str = "train") -> Path:
        return self.file("info", trial, session, f"session_df_{kind}.csv")
