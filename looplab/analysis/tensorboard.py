"""TensorBoard logging of a session, done only at log checkpoints (never in the per-step loop).

One event folder per session, `log/{n}_t{T}_s{S}/`, so that `tensorboard --logdir data/RUN` shows the
sessions side by side under the same tags: every session-dataframe column as a scalar at every log
checkpoint; weights, biases and gradients of every trainable net and the actions taken since the
previous histograms as histograms, every `meta.tensorboard_histogram_frequency`-th log checkpoint
(and at the last frame; 0: never), since they cost far more than the scalars; the resolved spec as text.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from looplab.spec.schema import Spec

HIST_BINS = 64  # buckets of a weight or gradient histogram

log = logging.getLogger("looplab")


def event_dir(paths: Any, trial: int, session: int) -> Path:
    return paths.board_dir(trial, session)


class SessionBoard:
    """A SummaryWriter for one session; `log()` is called once per log checkpoint."""

    def __init__(self, paths: Any, trial: int, session: int, spec: Spec):
        from torch.utils.tensorboard import SummaryWriter

        self.dir = event_dir(paths, trial, session)
        self.writer = SummaryWriter(str(self.dir), flush_secs=30)
        self.writer.add_text("spec", _spec_markdown(paths, trial, spec), 0)
        self.histogram_frequency = getattr(spec.meta, "tensorboard_histogram_frequency", 10)
        self.log_frequency = getattr(spec.meta, "log_frequency", 1)
        self.max_frame = getattr(getattr(spec, "env", None), "max_frame", None)

    def histograms_due(self, frame: int) -> bool:
        """Every Nth log checkpoint (counted from frame 0, so the same after a resume) and the last."""
        n = self.histogram_frequency
        last = self.max_frame is not None and frame >= self.max_frame
        return n > 0 and ((frame // self.log_frequency) % n == 0 or last)

    def log(self, row: dict, frame: int, nets: dict[str, Any], actions: list[np.ndarray], discrete: bool) -> None:
        """Scalars of the row; histograms when due (`actions` then emptied, else kept for the next ones)."""
        w = self.writer
        for key, value in row.items():
            if isinstance(value, int | float | np.number) and math.isfinite(float(value)):
                w.add_scalar(key, float(value), frame)
        if self.histograms_due(frame):
            self._histograms(frame, nets, actions, discrete)
        w.flush()

    def _histograms(self, frame: int, nets: dict[str, Any], actions: list[np.ndarray], discrete: bool) -> None:
        for name, net in nets.items():
            if name.startswith("target") or name.startswith("global"):
                continue  # copies of a trained net, not trained themselves
            for pname, p in net.named_parameters():
                if not p.requires_grad:
                    continue
                self._histogram(f"{name}/{pname}", p, frame)
                if p.grad is not None:
                    self._histogram(f"{name}.grad/{pname}", p.grad, frame)
        if actions:
            self._actions(np.concatenate([np.asarray(a).reshape(len(a), -1) for a in actions]), frame, discrete)
            actions.clear()

    def _histogram(self, tag: str, values: Any, frame: int) -> None:
        """HIST_BINS equal-width buckets between the values' min and max (TensorFlow's own summary API takes 30);
        torch's add_histogram buckets ~1,500 exponential ones, about five times the cost per tensor. A tensor
        holding inf or nan is left out."""
        a = values.detach().cpu().double().numpy().ravel()  # a torch tensor
        if a.size == 0 or not np.isfinite(a).all():
            return
        counts, edges = np.histogram(a, bins=HIST_BINS)
        self.writer.add_histogram_raw(tag, min=float(a.min()), max=float(a.max()), num=a.size,
                                      sum=float(a.sum()), sum_squares=float(a @ a), bucket_limits=edges[1:].tolist(),
                                      bucket_counts=counts.tolist(), global_step=frame)

    def log_eval(self, row: dict, frame: int) -> None:
        """An eval checkpoint's return, its moving average and episode length, under `eval/`."""
        for key in ("total_reward", "total_reward_ma", "episode_length"):
            self.writer.add_scalar(f"eval/{key}", float(row[key]), frame)

    def _actions(self, acts: np.ndarray, frame: int, discrete: bool) -> None:
        """Discrete: one histogram with a bin per action; continuous: one histogram per dimension."""
        if acts.shape[1] == 1:
            if discrete:
                bins = np.arange(int(acts.min()), int(acts.max()) + 2) - 0.5
                self.writer.add_histogram("action", acts[:, 0], frame, bins=bins)
            else:
                self.writer.add_histogram("action", acts[:, 0], frame)
            return
        for k in range(acts.shape[1]):
            self.writer.add_histogram(f"action/{k}", acts[:, k], frame)

    def close(self) -> None:
        self.writer.close()


def _spec_markdown(paths: Any, trial: int, spec: Spec) -> str:
    """The resolved spec as saved in the run folder (falls back to the in-memory spec)."""
    try:
        text = paths.spec(trial).read_text()
    except OSError:
        dump = spec.model_dump(mode="json") if hasattr(spec, "model_dump") else spec
        text = json.dumps(dump, indent=2, default=str)
    # TensorBoard renders text as markdown: indent to keep it a verbatim block.
    return "\n".join("    " + line for line in text.splitlines())


def open_board(paths: Any, trial: int, session: int, spec: Spec) -> SessionBoard | None:
    """A board when `meta.tensorboard` is on; a failure to open one is logged and costs only the board."""
    if not getattr(spec.meta, "tensorboard", False):
        return None
    try:
        return SessionBoard(paths, trial, session, spec)
    except Exception as e:
        log.error("TensorBoard disabled for %s: %s: %s", paths.prename(trial, session), type(e).__name__, e)
        return None
