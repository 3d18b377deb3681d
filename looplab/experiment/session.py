"""Session: one agent, one env, one seed, trained to max_frame.

The loop: act -> env.step -> agent.update (memory.add, train) -> clock.tick -> log checkpoint.
At each log checkpoint a row goes to the session dataframe and the checkpoint files are written.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from looplab import io
from looplab.analysis.metrics import MA_WINDOW, write_session_metrics
from looplab.analysis.tensorboard import open_board
from looplab.env import Clock, Env
from looplab.experiment.paths import RunPaths
from looplab.experiment.seeds import seed_everything
from looplab.registry import ALGORITHMS

COLUMNS = ["frame", "t", "epi", "wall_t", "opt_step", "fps", "total_reward", "total_reward_ma", "loss", "lr",
           "entropy", "explore_var", "entropy_coef", "clip_eps", "alpha", "nonfinite"]
log = logging.getLogger("looplab")


class Session:
    def __init__(self, spec: Any, paths: RunPaths, trial: int, session: int, seed: int,
                 mode: str = "train", progress: Callable[[dict], None] | None = None,
                 random_baseline: float = 0.0):
        self.spec = spec
        self.paths = paths
        self.trial, self.index = trial, session
        self.seed = seed
        self.mode = mode
        self.progress = progress
        self.random_baseline = random_baseline
        self.prename = paths.prename(trial, session)
        seed_everything(seed)
        self.env = Env(spec, seed)
        self.clock = Clock(num_envs=self.env.num_envs)
        self.agent = ALGORITHMS.get(spec.algorithm.name)(spec, self.env.info, self.clock)
        self.rows: list[dict] = []
        self.best_ma = -math.inf
        self.log_frequency = spec.meta.log_frequency
        self.max_frame = spec.env.max_frame
        self.board = open_board(paths, trial, session, spec)
        self.actions: list[np.ndarray] | None = [] if self.board is not None else None  # for its histogram

    # ---- the loop -----------------------------------------------------------------------------
    def run(self) -> dict:
        env, agent, clock, actions = self.env, self.agent, self.clock, self.actions
        state = env.reset()
        num_envs = env.num_envs
        next_log = self.log_frequency
        while clock.frame < self.max_frame:
            action = agent.act(state)
            if actions is not None:
                actions.append(action)
            obs, reward, terminated, truncated, next_state = env.step(action)
            agent.update(state, action, reward, next_state, terminated, truncated)
            state = obs
            clock.tick()
            clock.epi = env.episodes
            if clock.frame >= next_log or clock.frame >= self.max_frame:
                self.log_checkpoint()
                while next_log <= clock.frame:
                    next_log += self.log_frequency
                self.check_nonfinite()
        _ = num_envs
        return self.finish()

    def check_nonfinite(self) -> None:
        limit = self.spec.meta.max_nonfinite
        if self.agent.nonfinite >= limit:
            from looplab.errors import LoopLabError

            raise LoopLabError(
                f"session {self.prename}: {self.agent.nonfinite} updates skipped for non-finite loss or gradient "
                f"(meta.max_nonfinite={limit}) by frame {self.clock.frame}; last good checkpoint: "
                f"{self.paths.file('model', self.trial, self.index, 'ckpt-best_net_model.pt')}")

    # ---- checkpoints --------------------------------------------------------------------------
    def log_checkpoint(self) -> None:
        clock = self.clock
        wall_t = clock.wall_t
        total_reward = self.env.total_reward
        recent = [r["total_reward"] for r in self.rows[-(MA_WINDOW - 1):]] + [total_reward]
        recent = [r for r in recent if not math.isnan(r)]
        row = {
            "frame": clock.frame, "t": clock.t, "epi": clock.epi, "wall_t": wall_t, "opt_step": clock.opt_step,
            "fps": clock.frame / wall_t if wall_t > 0 else float("nan"),
            "total_reward": total_reward,
            "total_reward_ma": float(np.mean(recent)) if recent else float("nan"),
            "loss": self.agent.loss, "nonfinite": self.agent.nonfinite,
            **self.agent.log_values(),
        }
        self.rows.append(row)
        io.write_csv(self.paths.session_df(self.trial, self.index), self.dataframe())
        if self.board is not None:
            self.board.log(row, clock.frame, self.agent.nets(), self.actions, self.env.info.is_discrete)
        self.save_models()
        ma = row["total_reward_ma"]
        if not math.isnan(ma) and ma >= self.best_ma:
            self.best_ma = ma
            self.save_models("ckpt-best_")
        if self.progress is not None:
            self.progress({"session": self.index, "frame": clock.frame, "max_frame": self.max_frame,
                           "fps": row["fps"], "total_reward": total_reward, "total_reward_ma": ma,
                           "wall_t": wall_t})

    def dataframe(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows)
        cols = [c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]
        return df[cols]

    def save_models(self, tag: str = "") -> None:
        for name, net in self.agent.nets().items():
            io.torch_save(self.paths.file("model", self.trial, self.index, f"{tag}{name}_model.pt"), net.state_dict())
        for name, opt in self.agent.optimizers.items():
            io.torch_save(self.paths.file("model", self.trial, self.index, f"{tag}{name}_optim.pt"),
                          opt.optim.state_dict())

    def finish(self) -> dict:
        if self.board is not None:
            self.board.close()
        scalar = write_session_metrics(self.paths, self.trial, self.index, self.dataframe(), self.random_baseline)
        from looplab.analysis.graphs import session_graphs

        session_graphs(self.paths, self.trial, self.index)
        self.env.close()
        return scalar


def run_session(spec: Any, paths: RunPaths, trial: int, session: int, seed: int, mode: str,
                progress: Callable[[dict], None] | None, random_baseline: float) -> dict:
    return Session(spec, paths, trial, session, seed, mode, progress, random_baseline).run()


def session_worker(spec_dict: dict, spec_file: str, root: str, name: str, trial: int, session: int, seed: int,
                   mode: str, queue: Any, random_baseline: float, log_file: str) -> dict:
    """Entry point of a session process: one torch thread, its own log file, progress to the parent."""
    from pathlib import Path

    from looplab.experiment.logs import setup_logging
    from looplab.spec import validate_spec

    torch.set_num_threads(1)
    setup_logging(log_file, console=False)
    spec = validate_spec(spec_dict, spec_file, check_env=False)
    paths = RunPaths(Path(root), name)
    return run_session(spec, paths, trial, session, seed, mode, queue.put if queue is not None else None,
                       random_baseline)
