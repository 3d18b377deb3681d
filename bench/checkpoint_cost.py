"""What a session checkpoint of a large replay memory costs: the whole buffer written, or only the rows added
since the last checkpoint (`looplab.experiment.replay_store`, what sessions do).

A `Replay` of `--size` transitions (default 1e6) of `--dim`-float states, full, then `--added` new
transitions (default 1e4) between two checkpoints. Each repeat times, alternating, (a) writing every stored
row as one file (what a checkpoint of the whole memory costs) and (b) the incremental save after the new
rows. Prints one JSON line: seconds per repeat for each side, the files' sizes, and the ratio.

Usage: python bench/checkpoint_cost.py [--size 1000000] [--dim 64] [--added 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from looplab import io  # noqa: E402
from looplab.experiment import checkpoint  # noqa: E402
from looplab.experiment.replay_store import ReplayStore  # noqa: E402

VEC = 1000  # transitions per add() call, to fill the memory quickly


def make_memory(size: int, dim: int):
    import gymnasium as gym

    from looplab.agent.memory.base import memory_class
    from looplab.agent.memory.replay import ReplayConfig
    from looplab.env.make import EnvInfo

    class Algo:
        training_start_step = 0
        training_frequency = 1

    info = EnvInfo("bench", VEC, gym.spaces.Box(-1, 1, (dim,), np.float32), gym.spaces.Discrete(4))
    config = ReplayConfig(name="Replay", batch_size=256, max_size=size)
    return memory_class("Replay", info)(config, info, Algo(), np.random.default_rng(0))


def add(memory, n: int, rng: np.random.Generator, dim: int) -> None:
    for _ in range(max(1, n // VEC)):
        s = rng.standard_normal((VEC, dim), dtype=np.float32)
        memory.add(s, rng.integers(0, 4, VEC), rng.standard_normal(VEC).astype(np.float32), s,
                   np.zeros(VEC, np.float32), np.zeros(VEC, np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--added", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    memory = make_memory(args.size, args.dim)
    add(memory, args.size, rng, args.dim)
    folder = Path(tempfile.mkdtemp(prefix="looplab-ckpt-"))
    try:
        store = ReplayStore(folder / "replay")
        store.save(memory)  # the first checkpoint of a run writes every row once
        full_s, inc_s, full_b, inc_b = [], [], [], []
        for _ in range(args.repeats):
            add(memory, args.added, rng, args.dim)
            t0 = time.perf_counter()
            io.torch_save(folder / "whole.pt", checkpoint.encode(memory.state_dict(rows=True)))
            full_s.append(time.perf_counter() - t0)
            full_b.append((folder / "whole.pt").stat().st_size)
            t0 = time.perf_counter()
            store.save(memory)
            store.prune()
            inc_s.append(time.perf_counter() - t0)
            inc_b.append((folder / "replay" / store.files[-1]["name"]).stat().st_size)
        print(json.dumps({"size": args.size, "dim": args.dim, "added": args.added,
                          "whole_s": full_s, "incremental_s": inc_s,
                          "whole_mib": statistics.median(full_b) / 2**20, "incremental_mib": statistics.median(inc_b) / 2**20,
                          "ratio": statistics.median(i / w for i, w in zip(inc_s, full_s, strict=True))}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
