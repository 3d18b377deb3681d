"""Atomic writes when the file system refuses them: one clear error with the free space, the old file kept."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

# a real write failure: the process may not write files larger than 64 KiB (RLIMIT_FSIZE, as a quota would);
# Python ignores SIGXFSZ, so write() fails with EFBIG. torch.save hides that OSError in a RuntimeError.
SCRIPT = """
import resource, torch
from looplab import io
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
io.torch_save(DIR + "/ckpt.pt", {"frame": 1})
try:
    io.torch_save(DIR + "/ckpt.pt", {"frame": 2, "weights": torch.zeros(100_000)})
except io.WriteError as e:
    print(e)
print(io.torch_load(DIR + "/ckpt.pt")["frame"])
"""


def test_a_write_refused_by_the_file_system_is_a_clear_error_and_the_old_file_stays(tmp_path):
    proc = subprocess.run([sys.executable, "-c", f"DIR = {str(tmp_path)!r}\n{SCRIPT}"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    error, frame = proc.stdout.strip().splitlines()
    assert error.startswith(f"cannot write {tmp_path}/ckpt.pt: File too large (") and error.endswith(" free there)")
    assert frame == "1"  # the previous checkpoint, intact
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left


def test_an_unsynced_write_skips_only_the_sync_and_still_replaces_the_file_whole(tmp_path, monkeypatch):
    import os

    from looplab import io

    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "a.csv"
    io.write_text(path, "old\n")
    assert len(synced) == 1
    io.atomic_write(path, lambda f: f.write("new\n"), sync=False)
    assert len(synced) == 1 and path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]  # no temp file left
