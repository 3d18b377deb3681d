"""A cluster session's files sent to the driver: path confinement, which files changed, a session's files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from looplab.errors import LoopLabError
from looplab.experiment.cluster_files import (
    RunFolderSink,
    changes,
    confined,
    sees_run_folder,
    session_files,
    session_root,
    snapshot,
    write_token,
)
from looplab.runfolder import RunPaths
from tests.conftest import run_cli


@pytest.mark.parametrize("rel", ["/etc/passwd", "../x", "info/../../x", "", "info\\..\\x", ".."])
def test_the_sink_refuses_a_path_outside_the_run_folder(rel, tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    with pytest.raises(LoopLabError, match="outside the run folder"):
        RunFolderSink(str(root)).put(rel, b"x")
    with pytest.raises(LoopLabError, match="outside the run folder"):
        RunFolderSink(str(root)).remove([rel])
    assert list(tmp_path.rglob("x")) == [] and list(root.iterdir()) == []


def test_the_sink_refuses_a_path_through_a_link_out_of_the_run_folder(tmp_path):
    root = tmp_path / "run"
    (root / "info").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "info" / "out").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LoopLabError, match="outside the run folder"):
        confined(root, "info/out/x")


def test_the_sink_writes_removes_and_fetches_a_sessions_files(tmp_path):
    sink = RunFolderSink(str(tmp_path))
    sink.put("info/a_t0_s1_session_df_train.csv", b"frame\n1\n")
    sink.put("model/a_t0_s1_replay/00000001.pt", b"rows")
    sink.put("info/a_t0_s10_session_df_train.csv", b"other")
    sink.put("log/a_t0_s1.log", b"log")
    assert (tmp_path / "info" / "a_t0_s1_session_df_train.csv").read_bytes() == b"frame\n1\n"
    assert sorted(sink.fetch("a_t0_s1")) == [("info/a_t0_s1_session_df_train.csv", b"frame\n1\n"),
                                             ("log/a_t0_s1.log", b"log"),
                                             ("model/a_t0_s1_replay/00000001.pt", b"rows")]
    sink.remove(["model/a_t0_s1_replay/00000001.pt", "model/gone.pt"])
    assert [p.name for p in session_files(tmp_path, "a_t0_s1")] == ["a_t0_s1_session_df_train.csv", "a_t0_s1.log"]


def test_changes_are_the_new_and_changed_files_oldest_first_and_the_removed_ones(tmp_path):
    for name in ("keep", "change", "remove"):
        (tmp_path / name).write_text(name)
    (tmp_path / ".keep.tmp").write_text("an atomic write under way")
    sent = snapshot(tmp_path)
    assert changes(sent, sent) == ([], []) and set(sent) == {"keep", "change", "remove"}
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "new").write_text("new")
    os.utime(tmp_path / "sub" / "new", ns=(1, 1))  # older than anything: sent first
    replaced = tmp_path / "change.new"
    replaced.write_text("change")  # same size and content, a new file in its place (an atomic write)
    replaced.replace(tmp_path / "change")
    (tmp_path / "remove").unlink()
    assert changes(snapshot(tmp_path), sent) == (["sub/new", "change"], ["remove"])


def test_a_task_sees_the_run_folder_when_it_reads_the_drivers_token(tmp_path):
    paths = RunPaths(tmp_path, "a")
    assert not sees_run_folder(paths, "t")
    token = write_token(paths)
    assert sees_run_folder(paths, token) and not sees_run_folder(paths, "another") and not sees_run_folder(paths, None)
    job = {"root": str(tmp_path), "name": "a", "trial": 0, "session": 0, "files": "auto", "token": token}
    with session_root(job) as root:  # nothing to send: no Ray needed
        assert Path(root) == tmp_path


def test_cluster_files_must_be_auto_shared_or_send(data_dir):
    proc = run_cli("run", "looplab/spec/library/a2c_cartpole.json", "a2c_cartpole", "train",
                   "--set", "meta.cluster_files=sometimes", "-q", data_dir=data_dir, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "meta.cluster_files" in lines[0]
    assert not any(data_dir.iterdir())
