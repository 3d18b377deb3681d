"""`looplab reproduce RUN_DIR`: re-run a run's saved resolved spec with its saved session seeds into a new
run folder, then compare the two.

On the same code (git SHA), package versions and machine type the session dataframes must be identical,
time columns aside: "reproduced exactly", or a failure naming the first difference. Elsewhere exact
equality is not promised, so the report gives, per session and for the trial, the final moving-average
return of both runs and whether the new trial's mean lies in the original's 95% bootstrap confidence
interval (of the mean over its sessions); outside it is a failure. `--sessions N` re-runs the first N
sessions, `--frames N` stops them at frame N (schedules still see the original max_frame) and compares
the rows up to N.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from looplab import io
from looplab.agent.validate import validate_spec
from looplab.analysis.graphs import read_session_df
from looplab.analysis.statistics import bootstrap_ci
from looplab.errors import LoopLabError
from looplab.experiment.run import run_trial, write_status
from looplab.runfolder import RunPaths, open_run

TIME_COLUMN = re.compile(r"^(wall_t|fps)$|time|fps|_sec$|_seconds$")  # wall clock, not behaviour


@dataclass
class Reproduction:
    text: str
    ok: bool
    root: Path


def reproduce(run_dir: str | Path, sessions: int | None = None, frames: int | None = None,
              data: str | None = None, quiet: bool = False) -> Reproduction:
    src = open_run(run_dir)
    spec_path = src.spec()
    try:
        saved = io.read_json(spec_path)
        status = io.read_json(src.status) if src.status.exists() else {}
    except (OSError, ValueError) as e:
        raise LoopLabError(f"reproduce {src.root.name}: cannot read its saved spec: {e}") from None
    mode = status.get("mode", "train")
    if mode not in ("dev", "train"):
        raise LoopLabError(f"reproduce {src.root.name}: a '{mode}' run; reproduce re-runs dev and train runs")
    meta = saved.get("meta") or {}
    seeds = meta.get("session_seeds")
    if not seeds:
        raise LoopLabError(f"reproduce {src.root.name}: {spec_path.name} has no meta.session_seeds "
                           "(a run made by another tool?): nothing to reproduce it with")
    n = len(seeds) if sessions is None else sessions
    if not 1 <= n <= len(seeds):
        raise LoopLabError(f"--sessions must be between 1 and {len(seeds)} (the run's sessions), got {sessions}")
    max_frame = int(float((saved.get("env") or {}).get("max_frame", 0)))
    if frames is not None and not 0 < frames <= max_frame:
        raise LoopLabError(f"--frames must be between 1 and the run's max_frame {max_frame}, got {frames}")
    originals = [_session_df(src, s) for s in range(n)]

    raw = copy.deepcopy(saved)
    raw["meta"] = {**meta, "max_session": n, "stop_frame": frames, "push": False}
    spec = validate_spec(raw, str(spec_path), src.name, check_env=False)
    paths, _ = run_trial(raw, spec, str(spec_path), mode, data, quiet, seeds=seeds[:n])
    write_status(paths, reproduces=str(src.root))
    rerun = io.read_json(paths.spec()).get("meta") or {}
    news = [_session_df(paths, s) for s in range(n)]
    if frames is not None:
        originals = [df[df["frame"] <= frames].reset_index(drop=True) for df in originals]
        news = [new[new["frame"].isin(old["frame"])].reset_index(drop=True) for old, new in zip(originals, news, strict=True)]
    text, ok = compare(originals, news, meta, rerun)
    scope = f"{n} session(s)" + (f", frames <= {frames:,}" if frames is not None else "")
    head = f"reproduce {src.root} ({scope})\n  -> {paths.root}\n"
    return Reproduction(head + text, ok, paths.root)


def _session_df(paths: RunPaths, session: int) -> pd.DataFrame:
    path = paths.session_df(0, session)
    try:
        return read_session_df(path)
    except (OSError, ValueError) as e:
        raise LoopLabError(f"reproduce {paths.root.name}: cannot read {path.name}: {e}") from None


def compare(originals: list[pd.DataFrame], news: list[pd.DataFrame], meta: dict, rerun: dict) -> tuple[str, bool]:
    """The comparison report and whether the reproduction holds."""
    dirty = meta.get("git_dirty") or rerun.get("git_dirty")  # uncommitted changes: the SHA does not say the code
    same = {"code": None if dirty else _same(meta.get("git_sha"), rerun.get("git_sha")),
            "versions": _same(meta.get("versions"), rerun.get("versions")),
            "machine": _same(meta.get("machine"), rerun.get("machine"))}
    word = {True: "same", False: "different", None: "unknown"}
    sha = f"git {str(meta.get('git_sha'))[:12]} -> {str(rerun.get('git_sha'))[:12]}"
    lines = [f"  code: {word[same['code']]} ({sha}{', uncommitted changes' if dirty else ''}) | "
             f"versions: {word[same['versions']]} | machine: {word[same['machine']]}"]
    diff = first_difference(originals, news)
    if diff is None:
        time_cols = sorted({c for df in news for c in df.columns if TIME_COLUMN.search(c)})
        lines.append(f"reproduced exactly: {len(news)} session dataframe(s) identical "
                     f"(time columns {', '.join(time_cols) or 'none'} aside)")
        return "\n".join(lines), True
    lines.append(f"  not identical: {diff}")
    finals = [_final_ma(df) for df in originals], [_final_ma(df) for df in news]
    lines.append(f"  {'':8}{'original MA':>14}{'new MA':>14}")
    for s, (a, b) in enumerate(zip(*finals, strict=True)):
        lines.append(f"  {'s' + str(s):8}{a:>14.4g}{b:>14.4g}")
    old_mean, new_mean = float(np.nanmean(finals[0])), float(np.nanmean(finals[1]))
    lo, hi = bootstrap_ci(np.asarray(finals[0]), stat=np.mean)
    inside = lo <= new_mean <= hi
    lines.append(f"  {'trial':8}{old_mean:>14.4g}{new_mean:>14.4g}   original 95% bootstrap CI of the mean "
                 f"[{lo:.4g}, {hi:.4g}]: new trial MA {'inside' if inside else 'OUTSIDE'}")
    if all(same.values()):
        lines.append("NOT reproduced: the same code, versions and machine must give identical session dataframes")
        return "\n".join(lines), False
    lines.append("reproduced within the original's 95% CI" if inside else
                 "NOT reproduced: the new trial MA lies outside the original's 95% CI")
    return "\n".join(lines), inside


def first_difference(originals: list[pd.DataFrame], news: list[pd.DataFrame]) -> str | None:
    """Where the session dataframes (time columns aside) first differ, or None if they are identical."""
    for s, (a, b) in enumerate(zip(originals, news, strict=True)):
        cols_a = [c for c in a.columns if not TIME_COLUMN.search(c)]
        cols_b = [c for c in b.columns if not TIME_COLUMN.search(c)]
        if cols_a != cols_b:
            return f"session {s}: columns differ ({', '.join(sorted(set(cols_a) ^ set(cols_b)))})"
        if len(a) != len(b):
            return f"session {s}: {len(a)} rows in the original, {len(b)} in the new run"
        for i in range(len(a)):
            for c in cols_a:
                x, y = a[c].iat[i], b[c].iat[i]
                if not (x == y or (pd.isna(x) and pd.isna(y))):
                    return (f"session {s}, frame {_plain(a['frame'].iat[i])}, {c}: {_plain(x)} (original) vs "
                            f"{_plain(y)} (new)")
    return None


def _plain(x: object) -> object:
    return x.item() if isinstance(x, np.generic) else x


def _final_ma(df: pd.DataFrame) -> float:
    if len(df) == 0 or "total_reward_ma" not in df.columns:
        return float("nan")
    return float(df["total_reward_ma"].iat[-1])


def _same(a: object, b: object) -> bool | None:
    if a in (None, "unknown") or b in (None, "unknown"):
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        a = {k: v for k, v in a.items() if k != "looplab"}
        b = {k: v for k, v in b.items() if k != "looplab"}
    return a == b
