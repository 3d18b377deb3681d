"""A cluster session's files when its node does not see the driver's run folder (`meta.cluster_files`).

The driver writes a token into the run folder and passes it in each session's job; a task that reads the
same token there writes into the run folder as a local session does (`shared`). Otherwise (`send`, or
`auto` with no token in sight) the session runs in a node-local copy of the run folder's layout, under
the node's temp dir: it first fetches its own files from the driver (checkpoint, dataframe, replay
chunks, attempts: a session run again after its node died continues from there), then a sender thread
sends the files that changed (new inode, mtime or size) every `SEND_S` seconds, oldest first (the order
the session wrote them: replay chunks and weights before the checkpoint that lists them), and once more
at the end. The receiving end is `RunFolderSink`, a Ray actor on the driver's node, which writes each
file atomically into the run folder, confined to it. The node-local folder is removed at the end.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from looplab import io
from looplab.errors import LoopLabError
from looplab.runfolder import SUBDIRS, RunPaths

log = logging.getLogger("looplab")
MODES = ("auto", "shared", "send")
SEND_S = 1.0  # seconds between sends: a node that dies loses at most this much beyond its last checkpoint

Snapshot = dict[str, tuple[int, int, int]]  # relative path -> (inode, mtime_ns, size)


def confined(root: Path, rel: str) -> Path:
    """`root / rel` for a relative path that stays inside `root`; refuses absolute paths and '..'."""
    parts = PurePosixPath(rel).parts
    if not rel or PurePosixPath(rel).is_absolute() or "\\" in rel or ".." in parts:
        raise LoopLabError(f"refused a file path outside the run folder {root}: {rel!r}")
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise LoopLabError(f"refused a file path outside the run folder {root}: {rel!r}")
    return path


def session_files(root: Path, prename: str) -> list[Path]:
    """The files of session `prename` (`{n}_t{T}_s{S}`) in a run folder: each path with a part that names it
    (`info/{prename}_session_df_train.csv`, `model/{prename}_replay/00000001.pt`), not session S0's for S."""
    mine = re.compile(rf"^{re.escape(prename)}(?!\d)")
    out = []
    for sub in SUBDIRS:
        for path in sorted((root / sub).rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and not path.name.startswith(".") and any(mine.match(p) for p in rel.parts):
                out.append(path)
    return out


def snapshot(folder: Path) -> Snapshot:
    """Every file under `folder` (atomic writes' hidden temp files aside) with what tells a new version."""
    out: Snapshot = {}
    for path in folder.rglob("*"):
        if path.name.startswith("."):
            continue
        try:
            st = path.stat()
        except OSError:  # removed meanwhile (a pruned replay chunk)
            continue
        if path.is_file():
            out[path.relative_to(folder).as_posix()] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def changes(now: Snapshot, sent: Snapshot) -> tuple[list[str], list[str]]:
    """The files new or changed since `sent`, oldest first, and the files removed since."""
    changed = sorted((rel for rel, stat in now.items() if sent.get(rel) != stat), key=lambda rel: (now[rel][1], rel))
    return changed, sorted(set(sent) - set(now))


class RunFolderSink:
    """The driver's end (a Ray actor on its node): writes what the sessions send into the run folder."""

    def __init__(self, root: str):
        self.root = Path(root)

    def put(self, rel: str, data: bytes) -> None:
        path = confined(self.root, rel)
        io.atomic_write(path, lambda f: f.write(data), binary=True)

    def remove(self, rels: list[str]) -> None:
        for rel in rels:
            confined(self.root, rel).unlink(missing_ok=True)

    def fetch(self, prename: str) -> list[tuple[str, bytes]]:
        """A session's files, to continue it elsewhere."""
        return [(p.relative_to(self.root).as_posix(), p.read_bytes()) for p in session_files(self.root, prename)]


def start_sink(paths: RunPaths) -> Any:
    """The sink actor, pinned to the driver's node (the run folder is there), and the token the driver leaves in
    the run folder for tasks to tell whether they see it."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    return ray.remote(RunFolderSink).options(num_cpus=0, scheduling_strategy=here).remote(str(paths.root))


def write_token(paths: RunPaths) -> str:
    token = secrets.token_hex(16)
    io.write_text(paths.cluster_token, token)
    return token


def sees_run_folder(paths: RunPaths, token: str | None) -> bool:
    try:
        return token is not None and paths.cluster_token.read_text().strip() == token
    except OSError:
        return False


class Sender:
    """Sends a node-local run folder's changed files to the sink: every `SEND_S` seconds and on `sync()`."""

    def __init__(self, folder: Path, sink: Any, sent: Snapshot):
        self.folder, self.sink, self.sent = folder, sink, sent
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="looplab-send", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()

    def _loop(self) -> None:
        while not self.stopped.wait(SEND_S):
            try:
                self.sync()
            except Exception as e:  # the final sync raises it again
                self.error = e
                return

    def sync(self) -> None:
        import ray

        with self.lock:
            now = snapshot(self.folder)
            changed, removed = changes(now, self.sent)
            for rel in changed:
                try:
                    data = (self.folder / rel).read_bytes()
                except FileNotFoundError:  # pruned meanwhile
                    now.pop(rel)
                    continue
                ray.get(self.sink.put.remote(rel, data))
                self.sent[rel] = now[rel]
            if removed:
                ray.get(self.sink.remove.remote(removed))
            self.sent = {rel: stat for rel, stat in now.items() if rel in self.sent}


@contextmanager
def session_root(job: dict) -> Iterator[str]:
    """The run folder the session of `job` writes into: the driver's where this node sees it, else a node-local
    one whose files go to the driver (fetched first, sent as they change, removed at the end)."""
    paths = RunPaths(Path(job["root"]), job["name"])
    mode = job.get("files") or "shared"
    if mode == "shared" or (mode == "auto" and sees_run_folder(paths, job.get("token"))):
        yield job["root"]
        return
    prename = paths.prename(job["trial"], job["session"])
    temp = Path(tempfile.mkdtemp(prefix=f"looplab-{prename}-"))
    local = temp / paths.root.name
    try:
        import ray

        for sub in SUBDIRS:
            (local / sub).mkdir(parents=True)
        for rel, data in ray.get(job["sink"].fetch.remote(prename)):
            io.atomic_write(confined(local, rel), lambda f, data=data: f.write(data), binary=True)
        sender = Sender(local, job["sink"], snapshot(local))
        sender.start()
        try:
            yield str(local)
        except BaseException:
            sender.stop()
            _send_what_is_left(sender)  # the log says what went wrong
            raise
        sender.stop()
        if sender.error is not None:
            log.warning("session %s: a send to the driver failed (%s); sending again", prename, sender.error)
        sender.sync()
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _send_what_is_left(sender: Sender) -> None:
    try:
        sender.sync()
    except Exception as e:
        log.warning("cannot send the session's last files to the driver: %s", e)


def remove_token(paths: RunPaths) -> None:
    paths.cluster_token.unlink(missing_ok=True)
