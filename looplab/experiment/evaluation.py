"""Evaluation episodes (`meta.rigorous_eval`): at every `meta.eval_frequency` frames and at the last frame,
the agent plays one episode in each sub-env of an env of its own, without exploring, and a row goes to
`info/{n}_t{T}_s{S}_session_df_eval.csv` (SLM Lab's eval checkpoints).

The agent acts as in `enjoy`: the most likely action (argmax, or the mean of a continuous policy);
an `epsilon_greedy` / `boltzmann` spec acts at the end value of its `explore_var` schedule, as SLM Lab's
eval does. The eval env has a seed of its own, is reset with a seed derived from it and the frame at
every eval checkpoint, and sees the training env's observation normalizer frozen. The agent's random
streams (`looplab.agent.rng.Rng`) start from that seed and the global generators are reseeded with it; both
are saved before and restored after, so the training run's streams are untouched: a run's training
dataframe is the same with and without evaluation, and a resumed run redoes an eval checkpoint exactly.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import Any

import numpy as np
import pandas as pd

from looplab import io
from looplab.agent.rng import Rng
from looplab.analysis.graphs import session_graphs
from looplab.analysis.metrics import MA_WINDOW, write_session_metrics
from looplab.env import Env
from looplab.experiment import checkpoint
from looplab.experiment.seeds import derived_seed, eval_seed, seed_everything
from looplab.experiment.stop import STOP
from looplab.runfolder import RunPaths
from looplab.spec.schema import Spec

log = logging.getLogger("looplab")
EVAL_COLUMNS = ["frame", "t", "epi", "wall_t", "opt_step", "total_reward", "total_reward_ma", "episodes",
                "episode_length", "eval_time"]


class Evaluator:
    def __init__(self, spec: Spec, paths: RunPaths, trial: int, session: int, seed: int):
        self.paths, self.trial, self.session = paths, trial, session
        self.frequency = spec.meta.eval_frequency
        self.max_frame = spec.env.max_frame
        self.seed = eval_seed(seed)
        saved = checkpoint.global_rng_state()
        try:  # making an env must not move the training run's RNGs
            self.env = Env(spec, self.seed, autoreset="same_step")
        finally:
            checkpoint.set_global_rng_state(saved)
        # one return per sub-env is read back from the tracker's deque
        self.env.returns = deque(maxlen=max(self.env.returns.maxlen or 0, self.env.num_envs))
        self.rows: list[dict] = []

    def due(self, frame: int) -> bool:
        """At the first step at or after each multiple of eval_frequency, and at the last frame."""
        last = self.rows[-1]["frame"] if self.rows else 0
        return frame > last and (frame // self.frequency > last // self.frequency or frame >= self.max_frame)

    def run(self, agent: Any, clock: Any, train_env: Env) -> dict | None:
        """One eval checkpoint; returns its row (None when a stop request cut it short)."""
        t0 = time.time()
        saved = checkpoint.global_rng_state()
        rng = agent.rng.state_dict()
        modes = [(m, m.training) for net in agent.nets().values() for m in net.modules()]
        training = agent.training
        seed = derived_seed(self.seed, clock.frame)
        try:
            seed_everything(seed)
            agent.rng.load_state_dict(Rng(seed, agent.device).state_dict())
            agent.training = False
            for m, _ in modes:
                m.training = False
            norm = train_env.state_dict().get("obs_norm")
            self.env.load_state_dict({"obs_norm": norm})
            self.env.freeze()
            returns, lengths = self.episodes(agent, seed)
        finally:
            agent.training = training
            agent.rng.load_state_dict(rng)
            for m, mode in modes:
                m.training = mode
            checkpoint.set_global_rng_state(saved)
        if returns is None:
            return None
        recent = [r["total_reward"] for r in self.rows[-(MA_WINDOW - 1):]] + [float(np.mean(returns))]
        row = {"frame": clock.frame, "t": clock.t, "epi": clock.epi, "wall_t": clock.wall_t,
               "opt_step": clock.opt_step, "total_reward": float(np.mean(returns)),
               "total_reward_ma": float(np.mean(recent)), "episodes": len(returns),
               "episode_length": float(np.mean(lengths)), "eval_time": time.time() - t0}
        self.rows.append(row)
        io.write_csv(self.paths.session_df(self.trial, self.session, "eval"), self.dataframe())
        log.info("%s eval frame %d | return %.2f over %d episodes | ma %.2f", self.paths.prename(self.trial, self.session),
                 clock.frame, row["total_reward"], len(returns), row["total_reward_ma"])
        return row

    def episodes(self, agent: Any, seed: int) -> tuple[list[float] | None, list[int]]:
        """One finished episode per sub-env: (returns, lengths) in sub-env order; (None, []) if stopped."""
        env = self.env
        n = env.num_envs
        returns, lengths = [math.nan] * n, [0] * n
        finished = np.zeros(n, dtype=bool)
        steps = np.zeros(n, dtype=np.int64)
        state = env.reset(seed)
        while not finished.all():
            if STOP.signum:
                return None, []
            state = env.step(agent.act(state))[0]
            steps += 1
            ended = env._ep_len == 0  # the tracker zeroes a sub-env's length when its episode (game) ends
            if ended.any():
                new_returns = list(env.returns)[-int(ended.sum()):]  # appended in sub-env order
                for i, ret in zip(np.flatnonzero(ended), new_returns, strict=True):
                    if not finished[i]:
                        returns[i], lengths[i] = ret, int(steps[i])
                finished |= ended
                steps[ended] = 0
        return returns, lengths

    def dataframe(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=EVAL_COLUMNS)

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, d: dict) -> None:
        self.rows = list(d.get("rows") or [])

    def finish(self, random_baseline: float) -> None:
        """Close the env; the session's eval metrics and graphs next to its training ones."""
        self.env.close()
        if self.rows:
            write_session_metrics(self.paths, self.trial, self.session, self.dataframe(), random_baseline, "eval")
            session_graphs(self.paths, self.trial, self.session, "eval")
