"""The run folder: `data/{name}_{ts}/` with info/, graph/, model/, log/ (SLM Lab's layout and names).

This module owns the layout and the name of every file in a run folder; the rest of LoopLab asks it
for paths (`RunPaths`) and for the run's status file (`run.json`), never spelling a file name itself.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looplab import io
from looplab.errors import LoopLabError

SUBDIRS = ("info", "graph", "model", "log")
STATUS = "run.json"  # the run's record: spec name, mode, status, pid, git, metrics
REPORT = "index.html"
TUNE_DIR = "ray_tune"
SPEC_SUFFIX = "_spec.json"
TS_RE = r"\d{4}_\d{2}_\d{2}_\d{6}(?:_(\d+))?"
# a saved spec, `NAME_spec.json` or `NAME_tT_spec.json`, naming its spec
SPEC_RE = re.compile(rf"^(.+?)(?:_t\d+)?{re.escape(SPEC_SUFFIX)}$")
# what a run folder keeps of its results without its dataframes' graphs and models (the benchmark archive)
RESULT_PATTERNS = (STATUS, f"*{SPEC_SUFFIX}", "*_trial_metrics_scalar*.json", "info/*.csv", "info/*.json")
# optimizer states and resume checkpoints (left out of a push unless asked for)
OPTIM_PATTERNS = ("model/*_optim.pt", "model/*_ckpt.pt")


def data_dir(cli_value: str | None = None) -> Path:
    return Path(cli_value or os.environ.get("LOOPLAB_DATA_DIR") or "data")


def kind_suffix(kind: str) -> str:
    """Trial files keep SLM Lab's names for training; evaluation ones say `_eval`."""
    return "" if kind == "train" else f"_{kind}"


@dataclass
class RunPaths:
    root: Path
    name: str

    @classmethod
    def create(cls, data: Path, name: str) -> RunPaths:
        """A new run folder; the timestamp gets a suffix if another run took it this second."""
        ts = time.strftime("%Y_%m_%d_%H%M%S")
        root = data / f"{name}_{ts}"
        k = 1
        while root.exists():
            root = data / f"{name}_{ts}_{k}"
            k += 1
        try:
            for sub in SUBDIRS:
                (root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LoopLabError(f"cannot create run folder {root}: {e.strerror}") from None
        return cls(root, name)

    @property
    def ts(self) -> str:
        return self.root.name[len(self.name) + 1:]

    def prename(self, trial: int | None = None, session: int | None = None) -> str:
        out = self.name
        if trial is not None:
            out += f"_t{trial}"
        if session is not None:
            out += f"_s{session}"
        return out

    def file(self, sub: str | None, trial: int | None, session: int | None, suffix: str) -> Path:
        base = self.root / sub if sub else self.root
        return base / f"{self.prename(trial, session)}_{suffix}"

    @property
    def info_dir(self) -> Path:
        return self.root / "info"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    # ---- the run root -----------------------------------------------------------------------------
    @property
    def status(self) -> Path:
        return self.root / STATUS

    @property
    def cluster_token(self) -> Path:
        """Written while a trial runs on a Ray cluster: a task that reads it sees the run folder."""
        return self.root / ".cluster_token"

    @property
    def report(self) -> Path:
        return self.root / REPORT

    def spec(self, trial: int | None = None) -> Path:
        """The resolved spec the run (or trial `trial`) ran with."""
        return self.root / f"{self.prename(trial)}{SPEC_SUFFIX}"

    def best_spec(self) -> Path:
        """A search's best trial as a spec file."""
        return self.file(None, None, None, f"best{SPEC_SUFFIX}")

    def experiment_df(self) -> Path:
        return self.file(None, None, None, "experiment_df.csv")

    def trial_metrics(self, trial: int) -> Path:
        """The trial's scalar training metrics at the run root (SLM Lab's place)."""
        return self.file(None, trial, None, "trial_metrics_scalar.json")

    # ---- info/ ------------------------------------------------------------------------------------
    def session_df(self, trial: int, session: int, kind: str = "train") -> Path:
        return self.file("info", trial, session, f"session_df_{kind}.csv")

    def session_dfs(self, trial: int | str = "*", kind: str = "*") -> str:
        """A glob (relative to info/) of the session dataframes of a trial (default: of every trial)."""
        return f"{self.name}_t{trial}_s*_session_df_{kind}.csv"

    def session_df_re(self, kind: str = "train") -> re.Pattern:
        """Matches a session dataframe's file name; groups: trial, session."""
        return re.compile(rf"^{re.escape(self.name)}_t(\d+)_s(\d+)_session_df_{kind}\.csv$")

    def session_metrics(self, trial: int, session: int, kind: str = "train", scalar: bool = False) -> Path:
        return self.file("info", trial, session, f"session_metrics{'_scalar' if scalar else ''}_{kind}.json")

    def trial_info_metrics(self, trial: int, kind: str = "train", scalar: bool = False) -> Path:
        """`info/` trial metrics: all of them, or the scalars (`scalar`); eval ones end in `_eval`."""
        return self.file("info", trial, None, f"trial_metrics{'_scalar' if scalar else ''}{kind_suffix(kind)}.json")

    def trial_status(self, trial: int) -> Path:
        """A search trial's own status record."""
        return self.file("info", trial, None, "trial_status.json")

    def trial_error(self, trial: int) -> Path:
        return self.file("info", trial, None, "trial_error.json")

    def attempts(self, trial: int, session: int) -> Path:
        """The nodes a cluster session ran on, one entry per attempt (a node that died means another)."""
        return self.file("info", trial, session, "attempts.json")

    # ---- model/ -----------------------------------------------------------------------------------
    def checkpoint(self, trial: int, session: int, best: bool = False) -> Path:
        """The session's full checkpoint: the latest (for resume) or the best (highest total_reward_ma)."""
        return self.file("model", trial, session, "ckpt-best.pt" if best else "ckpt.pt")

    def checkpoints(self, trial: int, best: bool = False) -> str:
        """A glob (relative to model/) of the trial's sessions' checkpoints."""
        return f"{self.prename(trial)}_s*_{'ckpt-best' if best else 'ckpt'}.pt"

    def weights(self, trial: int, session: int, net: str, best: bool = False, optim: bool = False) -> Path:
        """A net's final (or best) weights, or its optimizer's state (`optim`)."""
        return self.file("model", trial, session, f"{'ckpt-best_' if best else ''}{net}_{'optim' if optim else 'model'}.pt")

    def video(self, trial: int, session: int) -> Path:
        """An enjoy run's recording, without its extension (the writer adds .mp4 or .gif)."""
        return self.file(None, trial, session, "enjoy")

    @property
    def tune_dir(self) -> Path:
        """A search's Ray Tune state (its experiment checkpoint, for search@RUN_DIR)."""
        return self.root / TUNE_DIR

    def replay_dir(self, trial: int, session: int) -> Path:
        return self.file("model", trial, session, "replay")

    # ---- graph/ and log/ --------------------------------------------------------------------------
    def session_graph(self, trial: int, session: int, kind: str = "train", key: str | None = None) -> Path:
        """The session's graph page, or its PNG of panel `key`."""
        end = f"_{key}_vs_frames.png" if key else ".html"
        return self.file("graph", trial, session, f"session_graph_{kind}{end}")

    def trial_graph(self, trial: int, kind: str = "train", key: str | None = None) -> Path:
        """The trial's graph page at the run root, or its PNG of panel `key`."""
        end = f"_{key}_vs_frames.png" if key else ".html"
        return self.file(None, trial, None, f"trial_graph{kind_suffix(kind)}{end}")

    def log_file(self, trial: int | None = None, session: int | None = None) -> Path:
        return self.root / "log" / f"{self.prename(trial, session)}.log"

    def board_dir(self, trial: int, session: int) -> Path:
        """The session's TensorBoard event folder."""
        return self.root / "log" / self.prename(trial, session)


def graph_file(folder: Path, name: str, graph: str, key: str | None = None, ext: str = "png") -> Path:
    """`{folder}/{name}_{graph}.html`, or its PNG of panel `key` (experiment and multi-trial graphs)."""
    return folder / (f"{name}_{graph}_{key}_vs_frames.png" if key else f"{name}_{graph}.{ext}")


def model_file_kind(name: str) -> str:
    """What a file in model/ holds, from its name."""
    if "ckpt-best" in name:
        return "best (highest total_reward_ma)"
    if name.endswith("ckpt.pt"):
        return "resume checkpoint (full state)"
    return "optimizer, final" if name.endswith("_optim.pt") else "final"


# ---- reading a run folder -------------------------------------------------------------------------
def read_status(root: Path) -> dict:
    """The run's `run.json` ({} when missing or unreadable)."""
    return io.read_json_object(root / STATUS)


def is_run(root: Path) -> bool:
    return (root / STATUS).exists()


def alive(pid: Any) -> bool:
    """Whether process `pid` exists (one of another user's counts: the kernel says EPERM, not ESRCH)."""
    try:
        os.kill(int(pid), 0)
        return True
    except PermissionError:
        return True
    except (OSError, ValueError, TypeError):
        return False


def run_state(status: dict) -> str:
    """finished / running / interrupted / failed; a 'running' run whose process is gone was interrupted."""
    st = status.get("status", "unknown")
    if st == "running" and "pid" in status and not alive(status["pid"]):
        return "interrupted"
    return st


def open_run(run_dir: str | Path) -> RunPaths:
    """The run folder at `run_dir`, or a one-line error if it is missing or not a run folder."""
    root = Path(run_dir)
    if not root.is_dir():
        raise LoopLabError(f"{run_dir}: no such run folder")
    name = read_status(root).get("spec_name")
    if not name:
        specs = sorted(p.name for p in root.glob(f"*{SPEC_SUFFIX}") if SPEC_RE.match(p.name))
        name = SPEC_RE.match(specs[0]).group(1) if specs else None
    if not name or not (root / "info").is_dir():
        raise LoopLabError(f"{run_dir}: not a run folder (expected {STATUS} or NAME{SPEC_SUFFIX}, and info/)")
    return RunPaths(root, name)


def run_name(root: Path) -> str:
    """The spec name a run folder was made for (from run.json, else from the folder name)."""
    try:
        name = io.read_json(root / STATUS).get("spec_name")
    except (OSError, ValueError):
        name = None
    if name:
        return str(name)
    m = re.match(rf"^(.+)_{TS_RE}$", root.name)
    if not m:
        raise LoopLabError(f"{root} is not a LoopLab run folder (expected NAME_YYYY_MM_DD_HHMMSS)")
    return m.group(1)


def latest_run(data: Path, spec_name: str) -> Path:
    """The newest run folder of `spec_name` in `data` (by its timestamp, then its same-second suffix)."""
    pattern = re.compile(rf"^{re.escape(spec_name)}_({TS_RE})$")
    found = []
    for p in data.glob(f"{spec_name}_*") if data.is_dir() else []:
        m = pattern.match(p.name)
        if m and p.is_dir():
            found.append((p.name[len(spec_name) + 1:len(spec_name) + 18], int(m.group(2) or 0), p))
    if not found:
        raise LoopLabError(f"train@latest: no run folder of spec '{spec_name}' in {data}")
    return max(found)[2]
