"""Replay rows saved incrementally beside a session checkpoint, in append-only chunk files.

A full checkpoint of a large replay memory (1M Atari transitions: ~7 GiB) would rewrite every stored row
each time; here each checkpoint writes only the rows written since the previous one, to a new file in
`model/{n}_t{T}_s{S}_replay/`, and the checkpoint lists the files that rebuild the memory in order
(later rows overwrite earlier ones where the ring buffer wrapped). When the listed files hold more than
twice the memory's capacity, one file of the current rows replaces them, so disk use stays bounded and
the cost of a checkpoint follows what was added since the last one.

Crash safety: a chunk is written (atomically) before the checkpoint that lists it, and files are
removed only once a checkpoint that no longer lists them is in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from looplab import io
from looplab.experiment import checkpoint

COMPACT_FACTOR = 2  # rows listed, as a multiple of the capacity, beyond which the chunks are rewritten as one


class ReplayStore:
    def __init__(self, folder: Path):
        self.folder = folder
        self.files: list[dict] = []  # {"name", "start", "end"} in load order
        self.mark: dict | None = None  # the memory's mark at the last save

    def save(self, memory: Any) -> dict:
        """Write the rows since the last save (or all of them, compacted); returns the checkpoint's manifest."""
        listed = sum(f["end"] - f["start"] for f in self.files)
        pending = memory.seen_size - (self.mark["seen"] if self.mark else 0)
        compact = self.mark is None or listed + pending > COMPACT_FACTOR * memory.max_size
        chunk = memory.rows_since(None if compact else self.mark)
        name = f"{self._next_seq():08d}.pt"
        io.torch_save(self.folder / name, checkpoint.encode(chunk))
        entry = {"name": name, "start": int(chunk["start"]), "end": int(chunk["end"])}
        self.files = [entry] if compact else [*self.files, entry]
        self.mark = memory.mark()
        return {"files": list(self.files), "mark": self.mark}

    def prune(self) -> None:
        """Remove the chunk files the last saved checkpoint does not list (call after it is written)."""
        keep = {f["name"] for f in self.files}
        for p in self.folder.glob("*.pt"):
            if p.name not in keep:
                p.unlink(missing_ok=True)

    def load(self, memory: Any, manifest: dict) -> None:
        """Rebuild the memory's rows from the files a checkpoint lists; later saves continue from there."""
        for f in manifest["files"]:
            memory.load_rows(checkpoint.decode(io.torch_load(self.folder / f["name"])))
        self.files, self.mark = list(manifest["files"]), manifest["mark"]

    def _next_seq(self) -> int:
        # past every file on disk: a chunk written by a run that died before its checkpoint is never reused
        names = [int(p.stem) for p in self.folder.glob("*.pt") if p.stem.isdigit()] if self.folder.is_dir() else []
        return max(names, default=0) + 1
