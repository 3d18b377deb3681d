"""Replay memories saved incrementally: chunks of the rows written since the last checkpoint rebuild the
memory exactly across several checkpoints and wrap-arounds of the ring buffer; a session checkpointing
every `meta.checkpoint_frequency` frames resumes bit for bit after a crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from looplab import io
from looplab.agent.memory.base import memory_class
from looplab.agent.memory.image_replay import ImageReplay
from looplab.agent.memory.prioritized import PrioritizedReplay, PrioritizedReplayConfig
from looplab.agent.memory.replay import ReplayConfig
from looplab.experiment import checkpoint
from looplab.experiment.replay_store import ReplayStore

N_ENVS, MAX_SIZE, STACK = 2, 100, 4


class _Algo:
    training_start_step = 0
    training_frequency = 1


def make(kind: str):
    import gymnasium as gym

    from looplab.env.make import EnvInfo

    if kind == "ImageReplay":
        info = EnvInfo("x", N_ENVS, gym.spaces.Box(0, 255, (STACK, 3, 3), np.uint8), gym.spaces.Discrete(3))
    else:
        info = EnvInfo("x", N_ENVS, gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(3))
    if kind == "PrioritizedReplay":
        cfg = PrioritizedReplayConfig(name=kind, batch_size=8, max_size=MAX_SIZE, alpha=0.6, epsilon=1e-4)
        return PrioritizedReplay(cfg, info, _Algo(), np.random.default_rng(0))
    config = ReplayConfig(name="Replay", batch_size=8, max_size=MAX_SIZE)
    mem = memory_class("Replay", info)(config, info, _Algo(), np.random.default_rng(0))
    assert isinstance(mem, ImageReplay) == (kind == "ImageReplay")
    return mem


class Feed:
    """Vector steps of random transitions; image states are stacks of frames that shift by one per step."""

    def __init__(self, mem, seed: int = 0):
        self.mem, self.rng = mem, np.random.default_rng(seed)
        self.image = isinstance(mem, ImageReplay)
        self.state = self._new_states()

    def _new_states(self) -> np.ndarray:
        if self.image:
            return self.rng.integers(0, 255, (N_ENVS, STACK, 3, 3), dtype=np.uint8)
        return self.rng.standard_normal((N_ENVS, 3)).astype(np.float32)

    def steps(self, n: int) -> None:
        for _ in range(n):
            if self.image:
                new = self.rng.integers(0, 255, (N_ENVS, 1, 3, 3), dtype=np.uint8)
                next_state = np.concatenate([self.state[:, 1:], new], axis=1)
            else:
                next_state = self._new_states()
            term, trunc = self.rng.random(N_ENVS) < 0.1, self.rng.random(N_ENVS) < 0.05
            self.mem.add(self.state, self.rng.integers(0, 3, N_ENVS), self.rng.standard_normal(N_ENVS), next_state,
                         term, trunc)
            if hasattr(self.mem, "update_priorities"):
                self.mem.update_priorities(self.rng.integers(0, self.mem.size, 4), self.rng.random(4))
            restart = self._new_states()
            self.state = np.where((term | trunc).reshape(-1, *[1] * (next_state.ndim - 1)), restart, next_state)


def restored(kind: str, live, folder, manifest):
    """A new memory from a checkpoint's bookkeeping (through the weights-only file format) and its chunks."""
    back = make(kind)
    path = folder.parent / "bookkeeping.pt"
    checkpoint.save(path, {"memory": live.state_dict(rows=False)})
    back.load_state_dict(checkpoint.load(path)["memory"])
    back.rng.bit_generator.state = live.rng.bit_generator.state  # the session's stream, saved with the session
    ReplayStore(folder).load(back, manifest)
    return back


def assert_same(a, b) -> None:
    arrays = {k for k, v in vars(a).items() if isinstance(v, np.ndarray)}
    assert arrays, "no arrays compared"
    for k in arrays:
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    if hasattr(a, "tree"):
        assert np.array_equal(a.tree.tree, b.tree.tree)
    assert (a.head, a.size, a.seen_size) == (b.head, b.size, b.seen_size)
    sa, sb = a.sample(), b.sample()
    assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("kind", ["Replay", "PrioritizedReplay", "ImageReplay"])
def test_chunks_rebuild_the_memory_across_checkpoints_and_wrap_arounds(tmp_path, kind):
    folder = tmp_path / "replay"
    mem, store = make(kind), ReplayStore(folder)
    feed = Feed(mem)
    for steps in (30, 10, 0, 45, 20, 170, 45, 15):  # 2 envs: 60, 20, 0, 90, 40, 340 ... transitions into 100 slots
        before = mem.seen_size
        feed.steps(steps)
        manifest = store.save(mem)
        store.prune()
        added = mem.seen_size - before
        last = manifest["files"][-1]
        if len(manifest["files"]) > 1:  # incremental: the chunk holds what was added, no more
            assert last["end"] - last["start"] == min(added, MAX_SIZE)
        listed = sum(f["end"] - f["start"] for f in manifest["files"])
        assert listed <= 2 * MAX_SIZE + added  # compacted into one chunk before the files outgrow the capacity
        assert sorted(p.name for p in folder.iterdir()) == sorted(f["name"] for f in manifest["files"])
        assert_same(mem, restored(kind, mem, folder, manifest))


def test_a_chunk_written_by_a_run_that_died_before_its_checkpoint_is_ignored_then_removed(tmp_path):
    folder = tmp_path / "replay"
    mem, store = make("Replay"), ReplayStore(folder)
    feed = Feed(mem)
    feed.steps(20)
    manifest = store.save(mem)  # the last checkpoint
    state = mem.state_dict(rows=False)
    feed.steps(20)
    store.save(mem)  # its chunk landed, the checkpoint listing it did not (the process died)
    assert len(list(folder.iterdir())) == 2
    # resume from the last checkpoint, continue differently, checkpoint again
    back = make("Replay")
    back.load_state_dict(state)
    resumed = ReplayStore(folder)
    resumed.load(back, manifest)
    Feed(back, seed=1).steps(7)
    manifest = resumed.save(back)
    resumed.prune()
    assert sorted(p.name for p in folder.iterdir()) == [f["name"] for f in manifest["files"]]
    assert_same(back, restored("Replay", back, folder, manifest))


def test_a_dqn_session_checkpointing_less_often_than_it_logs_resumes_bit_for_bit_after_a_crash(tmp_path):
    from looplab.experiment.run import prepare
    from looplab.experiment.session import Session
    from looplab.runfolder import RunPaths
    from tests.conftest import ROOT

    sets = ["env.max_frame=1200", "env.num_envs=2", "meta.log_frequency=100", "meta.checkpoint_frequency=300",
            "meta.tensorboard=false", "agent.memory.max_size=300", "agent.algorithm.training_start_step=100"]
    raw, spec, _ = prepare(str(ROOT / "looplab/spec/library/dqn_cartpole.json"), "dqn_cartpole", None, sets)
    torch.set_num_threads(1)

    def session(data, resume_root=None):
        paths = RunPaths(resume_root, spec.name) if resume_root else RunPaths.create(data, spec.name)
        io.write_json(paths.root / f"{spec.name}_spec.json", raw)
        return Session(spec, paths, 0, 0, 11, "train", resume=resume_root is not None)

    reference = session(tmp_path / "ref")
    reference.run()
    crashed = session(tmp_path / "crash")
    saved = []
    crashed.save_checkpoint = lambda state, save=crashed.save_checkpoint: (saved.append(crashed.clock.frame),
                                                                          save(state))
    update = crashed.agent.update

    def crash_at_frame_700(*args):
        update(*args)
        if crashed.clock.frame >= 700:
            raise RuntimeError("killed")

    crashed.agent.update = crash_at_frame_700
    with pytest.raises(RuntimeError, match="killed"):
        crashed.run()
    assert saved == [300, 600], "full checkpoints every 300 frames, not at every log checkpoint"
    chunks = list(crashed.paths.root.glob("model/*_replay/*.pt"))
    assert len(chunks) == 2  # the 600 transitions wrapped the 300 slots: rows of both saves are live
    resumed = session(None, resume_root=crashed.paths.root)
    assert resumed.clock.frame == 600
    resumed.run()
    cols = [c for c in reference.dataframe().columns if c not in ("wall_t", "fps")]
    pd.testing.assert_frame_equal(resumed.dataframe()[cols], reference.dataframe()[cols], check_exact=True)
