"""Trial: `max_session` sessions that differ only in seed, in parallel processes, then aggregated."""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, InvalidStateError, ProcessPoolExecutor, wait
from multiprocessing.managers import SyncManager
from typing import Any

import torch

from looplab.analysis.baseline import random_baseline
from looplab.analysis.commands import write_trial_results
from looplab.env.make import env_kwargs
from looplab.env.pool import usable_cores
from looplab.experiment.cluster import run_sessions
from looplab.experiment.hogwild import Hogwild, start_hogwild
from looplab.experiment.procs import child_init, child_setup, session_context
from looplab.experiment.progress import ProgressView
from looplab.experiment.resources import session_env_workers
from looplab.experiment.seeds import session_seed
from looplab.experiment.session import run_session, session_worker
from looplab.experiment.stop import STOP, Interrupted
from looplab.runfolder import RunPaths, alive
from looplab.spec.schema import Spec

log = logging.getLogger("looplab")


class Trial:
    def __init__(self, spec: Spec, spec_dict: dict[str, Any], spec_file: str, paths: RunPaths, trial: int,
                 mode: str, quiet: bool = False, resume: bool = False, seeds: list[int] | None = None):
        self.spec = spec
        self.spec_dict = spec_dict
        self.spec_file = spec_file
        self.paths = paths
        self.index = trial
        self.mode = mode
        self.quiet = quiet
        self.resume = resume
        self.num_sessions = 1 if mode == "dev" else spec.meta.max_session
        root = spec.meta.random_seed
        self.seeds = list(seeds) if seeds is not None else [session_seed(root, trial, s)
                                                            for s in range(self.num_sessions)]
        self.hogwild: Hogwild | None = None  # meta.distributed: the global nets the sessions train (looplab.experiment.hogwild)
        self.cluster: dict | None = None  # --ray-address: each session's Ray resources (looplab.experiment.cluster)

    def run(self) -> dict:
        spec = self.spec
        baseline = random_baseline(spec.env.name, env_kwargs(spec.env))
        log.info("trial %s: %d session(s), seeds %s, random baseline %.2f", self.paths.prename(self.index),
                 self.num_sessions, self.seeds, baseline)
        if spec.meta.distributed:
            self.hogwild = start_hogwild(spec, self.spec_dict, self.num_sessions, self.seeds[0])
        view = ProgressView(self.num_sessions, self.hogwild.max_frame if self.hogwild else spec.env.max_frame,
                            enabled=not self.quiet)
        with view:
            if self.cluster is not None:
                scalars = run_sessions(self, view, baseline)
            elif self.num_sessions == 1:
                torch.set_num_threads(1)  # one intra-op thread is faster for RL-sized nets
                scalars = [run_session(spec, self.paths, self.index, 0, self.seeds[0], self.mode, view.update,
                                       baseline, self.resume, self.hogwild)]
            else:
                scalars = self._run_parallel(view, baseline)
        if STOP.signum:
            self.analyze_done(scalars, baseline)
            raise Interrupted(STOP.signum)
        return self.analyze(scalars, baseline)

    def analyze_done(self, scalars: list[dict], baseline: float) -> None:
        """After a stop: the analysis of the sessions that logged something; never masks the stop."""
        done = [s for s in scalars if s]
        if not done:
            return
        try:
            self.analyze(scalars, baseline)
        except Exception as e:  # partial data: report what failed, keep the interrupt's exit code
            log.warning("trial %s: analysis of the interrupted trial failed: %s", self.paths.prename(self.index), e)

    def _run_parallel(self, view: ProgressView, baseline: float) -> list[dict]:
        ctx = session_context()
        # Hogwild workers train together, so all run at once (as in SLM Lab)
        workers = self.num_sessions if self.hogwild else min(self.num_sessions, usable_cores())
        spec_dict = self.spec_dict
        if self.spec.meta.env_workers is None:  # sessions running at once share the cores for their env workers
            spec_dict = {**spec_dict, "meta": {**spec_dict["meta"], "env_workers": session_env_workers(self.spec,
                                                                                                        workers)}}
        # every process started here dies with this one, however it dies (and its env workers with it)
        setup = child_setup(os.getpid())
        threading.excepthook = _quiet_stop_excepthook
        manager = SyncManager(ctx=ctx)
        manager.start(child_init, (setup,))
        with manager:
            queue = manager.Queue()
            pump = threading.Thread(target=_pump, args=(queue, view), daemon=True)
            pump.start()
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=child_init,
                                     initargs=(setup,)) as pool:
                try:
                    futures = [
                        pool.submit(session_worker, spec_dict, self.spec_file, str(self.paths.root),
                                    self.paths.name, self.index, s, self.seeds[s], self.mode, queue, baseline,
                                    str(self.paths.log_file(self.index, s)), self.resume, self.hogwild)
                        for s in range(self.num_sessions)
                    ]
                    results = self._collect(pool, futures)
                except BaseException:  # the trial's sessions end with it, as one
                    _kill(list(getattr(pool, "_processes", {}) or {}))
                    raise
            try:
                queue.put(None)
            except (OSError, EOFError):  # the manager process went with a signal to the whole process group
                pass
            pump.join(timeout=5)
        return results

    def _collect(self, pool: ProcessPoolExecutor, futures: list) -> list[dict]:
        """Wait for the sessions; on SIGINT/SIGTERM forward it to them, drop queued ones, keep their results."""
        # the executor keeps its worker processes private; their pids are what the signal goes to
        STOP.forward = list(getattr(pool, "_processes", {}) or {})
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            STOP.forward = list(getattr(pool, "_processes", {}) or {})
            if STOP.signum:
                for f in pending:
                    f.cancel()
                # a signal to the whole process group can end the workers and the executor's own thread at
                # once: then nothing will ever finish the futures still pending
                if pending and not any(alive(pid) for pid in STOP.forward):
                    break
        STOP.forward = []
        return [_result(f) for f in futures]

    def analyze(self, scalars: list[dict], baseline: float) -> dict:
        return write_trial_results(self.paths, self.index, self.num_sessions, scalars, baseline)


def _result(f: Any) -> dict:
    """A session's scalars; {} for one that never ran, or that the stop itself ended (a signal to the whole
    process group can end a worker before it returns): the trial then ends as interrupted, not failed."""
    if f.cancelled() or not f.done() or (STOP.signum and f.exception() is not None):
        return {}
    return f.result()


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:  # already gone
            pass


def _pump(queue: Any, view: ProgressView) -> None:
    while True:
        try:
            item = queue.get()
        except (EOFError, OSError):  # the manager process went with a signal to the whole process group
            return
        if item is None:
            return
        view.update(item)


def _quiet_stop_excepthook(args: threading.ExceptHookArgs) -> None:
    """Threads' uncaught exceptions as usual, except one that is only the noise of a stop: when a signal to the
    whole process group ends the session workers after the trial cancelled their futures, the executor's own
    thread tries to fail those cancelled futures and raises InvalidStateError (CPython 3.11)."""
    if (STOP.signum and args.exc_type is InvalidStateError
            and type(args.thread).__name__ == "_ExecutorManagerThread"):
        return
    _THREAD_EXCEPTHOOK(args)


_THREAD_EXCEPTHOOK = threading.excepthook
