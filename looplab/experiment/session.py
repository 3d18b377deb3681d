"""Session: one agent, one env, one seed, trained to max_frame.

The loop: act -> env.step -> agent.update (memory.add, train) -> clock.tick -> log checkpoint.
At each log checkpoint a row goes to the session dataframe; every `meta.checkpoint_frequency` frames (by default
at the first log checkpoint and then about once a minute, CHECKPOINT_SECONDS), and when the session stops or
ends, the resume checkpoint and the weights files are written.
"""

from __future__ import annotations

import logging
import math
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from looplab import faults, io
from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.validate import validate_spec
from looplab.analysis.graphs import session_graphs
from looplab.analysis.metrics import MA_WINDOW, write_session_metrics
from looplab.analysis.tensorboard import open_board
from looplab.env import Clock, Env
from looplab.errors import LoopLabError
from looplab.experiment import checkpoint
from looplab.experiment.evaluation import Evaluator
from looplab.experiment.logs import setup_logging
from looplab.experiment.replay_store import ReplayStore
from looplab.experiment.seeds import seed_everything
from looplab.experiment.stop import STOP, install_stop_handlers
from looplab.runfolder import RunPaths
from looplab.spec.schema import Spec

# Without `meta.checkpoint_frequency`, a session writes its resume checkpoint at its first log checkpoint,
# then at the first log checkpoint this many seconds (session wall time) after the last one, and at its end:
# a crash loses at most about this much work, and a fast session (thousands of frames per second, a log
# checkpoint every 500 frames) does not spend a third of its time writing checkpoints.
CHECKPOINT_SECONDS = 60.0

COLUMNS = ["frame", "t", "epi", "wall_t", "opt_step", "fps", "total_reward", "total_reward_ma", "loss", "lr",
           "entropy", "explore_var", "entropy_coef", "clip_eps", "alpha", "q_mean", "nonfinite"]
log = logging.getLogger("looplab")
if TYPE_CHECKING:
    from looplab.experiment.hogwild import Hogwild


class Session:
    def __init__(self, spec: Spec, paths: RunPaths, trial: int, session: int, seed: int,
                 mode: str = "train", progress: Callable[[dict], None] | None = None,
                 random_baseline: float = 0.0, resume: bool = False, hogwild: Hogwild | None = None):
        self.spec = spec
        self.paths = paths
        self.trial, self.index = trial, session
        self.seed = seed
        self.mode = mode
        self.progress = progress
        self.random_baseline = random_baseline
        self.prename = paths.prename(trial, session)
        seed_everything(seed)  # for third-party code: the env and the agent draw from generators of their own
        self.env = Env(spec, seed)
        self.clock = Clock(num_envs=self.env.num_envs)
        self.agent = ALGORITHMS.get(spec.algorithm.name)(spec, self.env.info, self.clock, seed)
        if hogwild is not None:  # a worker of a Hogwild trial (looplab.experiment.hogwild)
            hogwild.attach(self.agent)
        self.rows: list[dict] = []
        self.best_ma = -math.inf
        self.best: dict | None = None  # the best-MA weights not written yet
        self.log_frequency = spec.meta.log_frequency
        self.max_frame = session_max_frame(spec)
        if hogwild is not None:
            self.max_frame = min(self.max_frame, hogwild.max_frame)
        self.ckpt_path = paths.checkpoint(trial, session)
        self.checkpoint_frequency = spec.meta.checkpoint_frequency  # frames; None: by wall time
        self.last_checkpoint_t: float | None = None  # the clock's wall_t at the last checkpoint written
        self.replay_store = ReplayStore(paths.replay_dir(trial, session)) if (
            self.agent.memory.incremental) else None
        self.interrupted = False
        self.fault = faults.SelfSignal(self.prename)  # a test's LOOPLAB_SIGNAL_AT
        self.evaluator = Evaluator(spec, paths, trial, session, seed) if spec.meta.rigorous_eval else None
        self._resume_obs = self.load_checkpoint() if resume and self.ckpt_path.exists() else None
        self.next_checkpoint = self.after(self.clock.frame)
        self.board = open_board(paths, trial, session, spec)
        # the actions since the board's last histograms
        self.actions: list[np.ndarray] | None = [] if self.board and self.board.histogram_frequency else None

    # ---- the loop -----------------------------------------------------------------------------
    def run(self) -> dict:
        try:
            return self._run()
        except io.WriteError as e:  # a full disk: stop here; the last checkpoint written is intact
            self.env.close()
            raise io.WriteError(f"session {self.prename}: {e}; resume with train@{self.paths.root} once there is "
                                "space") from None

    def _run(self) -> dict:
        env, agent, clock, actions, fault = self.env, self.agent, self.clock, self.actions, self.fault
        state = env.reset() if self._resume_obs is None else self._resume_obs
        # the smallest multiple of log_frequency after the current frame (also right after a resume)
        next_log = (clock.frame // self.log_frequency + 1) * self.log_frequency
        evaluator = self.evaluator
        if evaluator is not None and evaluator.due(clock.frame):  # an eval checkpoint a stop cut short
            self.evaluate()
        while clock.frame < self.max_frame:
            if STOP.signum:
                self.interrupted = True
                if clock.frame == 0:  # nothing done yet: a resume starts the session over, which is the same run
                    log.warning("session %s: stopped by %s before its first step; it starts over when resumed",
                                self.prename, signal_name(STOP.signum))
                    break
                self.save_checkpoint(state)
                log.warning("session %s: stopped by %s at frame %d; checkpoint %s", self.prename,
                            signal_name(STOP.signum), clock.frame, self.ckpt_path)
                break
            state = step(agent, env, clock, state, actions)
            if evaluator is not None and evaluator.due(clock.frame):  # before the log checkpoint that saves it
                self.evaluate()
            if clock.frame >= next_log or clock.frame >= self.max_frame:
                self.log_checkpoint(state)
                while next_log <= clock.frame:
                    next_log += self.log_frequency
            if clock.frame >= fault.frame:
                fault.fire()
        return self.finish()

    def evaluate(self) -> None:
        row = self.evaluator.run(self.agent, self.clock, self.env)
        if row is not None and self.board is not None:
            self.board.log_eval(row, self.clock.frame)

    def check_nonfinite(self) -> None:
        limit = self.spec.meta.max_nonfinite
        if self.agent.nonfinite >= limit:
            raise LoopLabError(
                f"session {self.prename}: {self.agent.nonfinite} updates skipped for non-finite loss or gradient "
                f"(meta.max_nonfinite={limit}) by frame {self.clock.frame}; last good checkpoint: "
                f"{self.ckpt_path if self.ckpt_path.exists() else 'none (before the first log checkpoint)'}")

    # ---- checkpoints --------------------------------------------------------------------------
    def log_checkpoint(self, state: np.ndarray) -> None:
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
        due = self.checkpoint_due()
        # synced to disk with each resume checkpoint, which holds the same rows; in between, a sync per log
        # checkpoint would cost more than the write (a crash of the machine there loses no resumable work)
        io.write_csv(self.paths.session_df(self.trial, self.index), self.dataframe(), sync=due)
        if self.board is not None:
            self.board.log(row, clock.frame, self.agent.nets(), self.actions, self.env.info.is_discrete)
        # before any checkpoint is written, so that the last good one is left intact
        self.check_nonfinite()
        ma = row["total_reward_ma"]
        if not math.isnan(ma) and ma >= self.best_ma:  # kept in memory, written with the next checkpoint
            self.best_ma = ma
            self.best = checkpoint.snapshot({
                "nets": {k: v.state_dict() for k, v in self.agent.nets().items()},
                "optims": {k: o.optim.state_dict() for k, o in self.agent.optimizers.items()},
                "env": checkpoint.env_state(self.env), "frame": clock.frame, "best_ma": ma})
        if due:
            self.save_checkpoint(state)
        log.info("%s frame %d/%d | fps %.0f | return %.2f | ma %.2f | loss %.4g | opt_step %d", self.prename,
                 clock.frame, self.max_frame, row["fps"], total_reward, row["total_reward_ma"], row["loss"],
                 clock.opt_step)
        if self.progress is not None:
            self.progress({"session": self.index, "frame": clock.frame, "max_frame": self.max_frame,
                           "fps": row["fps"], "total_reward": total_reward, "total_reward_ma": ma,
                           "wall_t": wall_t})

    def after(self, frame: int) -> int:
        """The frame of the next checkpoint by `meta.checkpoint_frequency` (without it: never by frames)."""
        f = self.checkpoint_frequency
        return (frame // f + 1) * f if f else self.max_frame

    def checkpoint_due(self) -> bool:
        """At a log checkpoint: whether to write the resume checkpoint now (see CHECKPOINT_SECONDS)."""
        frame = self.clock.frame
        if frame >= self.max_frame or (self.checkpoint_frequency and frame >= self.next_checkpoint):
            return True
        return not self.checkpoint_frequency and (
            self.last_checkpoint_t is None or self.clock.wall_t - self.last_checkpoint_t >= CHECKPOINT_SECONDS)

    def dataframe(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows)
        cols = [c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]
        return df[cols]

    def save_models(self, nets: dict[str, dict], optims: dict[str, dict], best: bool = False) -> None:
        for name, weights in nets.items():
            io.torch_save(self.paths.weights(self.trial, self.index, name, best), weights)
        for name, optim in optims.items():
            io.torch_save(self.paths.weights(self.trial, self.index, name, best, optim=True), optim)

    def save_checkpoint(self, state: np.ndarray) -> None:
        """Everything needed to continue from here bit for bit (see looplab.experiment.checkpoint), with the
        current and the best weights beside it (written here, not at every log checkpoint: each file costs a
        sync to disk)."""
        self.save_models({k: v.state_dict() for k, v in self.agent.nets().items()},
                         {k: o.optim.state_dict() for k, o in self.agent.optimizers.items()})
        if self.best is not None:
            best, self.best = self.best, None
            self.save_models(best["nets"], best["optims"], best=True)
            checkpoint.save(self.paths.checkpoint(self.trial, self.index, best=True),
                            {k: best[k] for k in ("nets", "env", "frame", "best_ma")})
        store = self.replay_store
        algorithm = self.agent.state_dict(memory_rows=store is None)
        if store is not None:
            algorithm["replay_chunks"] = store.save(self.agent.memory)
        checkpoint.save(self.ckpt_path, {
            "algorithm": algorithm,
            "clock": self.clock.state_dict(),
            "global_rng": checkpoint.global_rng_state(),
            "env": checkpoint.env_state(self.env),
            "obs": state,
            "rows": self.rows,
            "best_ma": self.best_ma,
            "eval": self.evaluator.state_dict() if self.evaluator is not None else None,
        })
        if store is not None:
            store.prune()
        self.next_checkpoint = self.after(self.clock.frame)
        self.last_checkpoint_t = self.clock.wall_t

    def load_checkpoint(self) -> np.ndarray | None:
        """Restore the last checkpoint; returns the observation to act on next, or None for a checkpoint
        written before the first step (by an earlier version), from which the session starts over."""
        d = checkpoint.load(self.ckpt_path)
        if d["clock"]["frame"] == 0:
            log.info("session %s: %s was written before the first step; starting over", self.prename,
                     self.ckpt_path)
            return None
        self.agent.load_state_dict(d["algorithm"])
        if "replay_chunks" in d["algorithm"] and self.replay_store is not None:
            self.replay_store.load(self.agent.memory, d["algorithm"]["replay_chunks"])
        self.clock.load_state_dict(d["clock"])
        self.rows = d["rows"]
        self.best_ma = d["best_ma"]
        if self.evaluator is not None and d.get("eval") is not None:
            self.evaluator.load_state_dict(d["eval"])
        restart = checkpoint.load_env_state(self.env, d["env"])
        obs = d["obs"]
        if restart is not None:
            obs = checkpoint.restart_envs(self.env, obs, restart)
        checkpoint.set_global_rng_state(d["global_rng"])
        log.info("session %s: resumed from %s at frame %d", self.prename, self.ckpt_path, self.clock.frame)
        return obs

    def finish(self) -> dict:
        if self.board is not None:
            self.board.close()
        if self.evaluator is not None:
            self.evaluator.finish(self.random_baseline)
        if not self.rows:  # stopped before the first log checkpoint: nothing to analyze
            self.env.close()
            return {}
        scalar = write_session_metrics(self.paths, self.trial, self.index, self.dataframe(), self.random_baseline)
        session_graphs(self.paths, self.trial, self.index)
        self.env.close()
        return scalar


def step(agent: Any, env: Env, clock: Clock, state: np.ndarray, actions: list[np.ndarray] | None = None) -> np.ndarray:
    """One step of the session loop: act (the action kept in `actions` if given), step the envs, update the
    agent, tick the clock; returns the state to act on next."""
    action = agent.act(state)
    if actions is not None:
        actions.append(action)
    obs, reward, terminated, truncated, next_state = env.step(action)
    agent.update(state, action, reward, next_state, terminated, truncated)
    clock.tick()
    clock.epi = env.episodes
    return obs


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def session_max_frame(spec: Spec) -> int:
    """The frame a session of `spec` ends at (`meta.stop_frame` cuts `env.max_frame` short)."""
    return min(spec.env.max_frame, spec.meta.stop_frame or spec.env.max_frame)


def finished_earlier(spec: Spec, paths: RunPaths, trial: int, session: int) -> pd.Series | None:
    """The last row of a session that already ran to its end (its dataframe reaches its last frame and its
    metrics are written after it), else None."""
    df_path, scalar = paths.session_df(trial, session), paths.session_metrics(trial, session, scalar=True)
    if not (df_path.is_file() and scalar.is_file()):
        return None
    try:
        df = pd.read_csv(df_path)
    except (OSError, ValueError):
        return None
    if df.empty or "frame" not in df or df["frame"].iloc[-1] < session_max_frame(spec):
        return None
    return df.iloc[-1]


def run_session(spec: Spec, paths: RunPaths, trial: int, session: int, seed: int, mode: str,
                progress: Callable[[dict], None] | None, random_baseline: float, resume: bool = False,
                hogwild: Hogwild | None = None) -> dict:
    last = finished_earlier(spec, paths, trial, session) if resume and hogwild is None else None
    if last is not None:  # resuming a run leaves a session that ended as it is, checkpoint or none
        prename = paths.prename(trial, session)
        log.info("session %s: ended earlier at frame %d; its results are kept", prename, last["frame"])
        if not paths.session_graph(trial, session).is_file():  # a record without its graphs (a benchmark's)
            session_graphs(paths, trial, session)
        if progress is not None:
            progress({"session": session, "frame": int(last["frame"]), "max_frame": session_max_frame(spec),
                      "fps": float(last["fps"]), "total_reward": float(last["total_reward"]),
                      "total_reward_ma": float(last["total_reward_ma"]), "wall_t": float(last["wall_t"])})
        return io.read_json(paths.session_metrics(trial, session, scalar=True))
    return Session(spec, paths, trial, session, seed, mode, progress, random_baseline, resume, hogwild).run()


def session_worker(spec_dict: dict[str, Any], spec_file: str, root: str, name: str, trial: int, session: int,
                   seed: int, mode: str, queue: Any, random_baseline: float, log_file: str, resume: bool = False,
                   hogwild: Hogwild | None = None) -> dict:
    """Entry point of a session process: one torch thread, its own log file, progress to the parent."""
    torch.set_num_threads(1)
    install_stop_handlers(force_on_repeat=False, reset=False)
    setup_logging(log_file, console=False)
    spec = validate_spec(spec_dict, spec_file, check_env=False)
    paths = RunPaths(Path(root), name)
    return run_session(spec, paths, trial, session, seed, mode, ProgressSink(queue) if queue is not None else None,
                       random_baseline, resume, hogwild)


class ProgressSink:
    """Progress lines to the parent's queue. A queue that is gone (its manager process ended with a signal to
    the whole process group) silences them: the session still stops cleanly and saves its checkpoint."""

    def __init__(self, queue: Any):
        self.queue = queue

    def __call__(self, item: dict) -> None:
        if self.queue is None:
            return
        try:
            self.queue.put(item)
        except (OSError, EOFError):
            self.queue = None
