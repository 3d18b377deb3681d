"""The benchmark table: one row per suite row, read from the run folder each row ran in.

`records` turns the suite and its state (which run folder belongs to which row) into plain dicts;
`write_tables` writes `benchmark.md`, `benchmark.csv` and one multi-trial graph per env; `publish`
puts the same section into a markdown file of the user's (e.g. BENCHMARKS.md) between markers, so
that several suites share one page.
"""

from __future__ import annotations

import logging
import math
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd

from looplab import io
from looplab.analysis import graphs
from looplab.analysis.text import duration
from looplab.errors import LoopLabError
from looplab.runfolder import RESULT_PATTERNS, RunPaths, graph_file, read_status
from looplab.spec.suite import Suite, SuiteRow

log = logging.getLogger("looplab")
PASS, FAIL = "✅", "❌"
CSV_COLS = ["suite", "row", "env", "algorithm", "status", "total_reward_ma", "total_reward_ma_iqm",
            "total_reward_ma_ci_low", "total_reward_ma_ci_high", "eval_total_reward_ma", "reference", "beats_reference",
            "target", "beats_target", "frames", "sessions", "wall_time_s", "fps", "git_sha", "git_dirty", "run",
            "reference_source", "error"]
MA_GRAPH = "mean_returns_ma"


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


ARCHIVE = "runs"
# what a finished row keeps in the output folder: enough to tabulate and graph it again, no checkpoints
ARCHIVED = RESULT_PATTERNS


def archive(root: Path, out: Path, run: str, patterns: tuple[str, ...] = ARCHIVED) -> Path:
    """Copy a row's record (by default all of it, as when it finished) from its run folder into
    `out/runs/{run}` (atomic writes)."""
    dest = out / ARCHIVE / run
    for pattern in patterns:
        for src in sorted(root.glob(pattern)):
            if src.is_file():
                io.atomic_write(dest / src.relative_to(root), lambda f, s=src: f.write(s.read_bytes()), binary=True)
    return dest


def archived(out: Path, run: str) -> bool:
    """Whether the output folder holds the record of a finished row (not the sessions of one still going)."""
    return read_status(out / ARCHIVE / run).get("status") == "finished"


def run_root(data: Path, out: Path | None, run: str | None) -> Path | None:
    """Where a row's files are: its run folder, else its record in the output folder."""
    if not run:
        return None
    for root in (data / run, out / ARCHIVE / run if out is not None else None):
        if root is not None and root.is_dir():
            return root
    return None


def record(suite: Suite, row: SuiteRow, entry: dict | None, data: Path, out_dir: Path | None = None) -> dict:
    """The table's fields for one row: its state entry and what its run folder (or its record) holds."""
    entry = entry or {}
    out: dict[str, Any] = dict.fromkeys(CSV_COLS)
    out.update(suite=suite.name, row=row.name, env=row.env, algorithm=row.algorithm, reference=row.reference,
               reference_source=row.source, target=row.target, status=entry.get("status", "pending"),
               error=entry.get("error"), wall_time_s=entry.get("wall_time"), run=entry.get("run"),
               sessions_ended=len(entry.get("sessions_ended") or []))
    root = run_root(data, out_dir, entry.get("run"))
    if root is None:
        return out
    status = read_status(root)
    name = str(status.get("spec_name") or root.name)
    paths = RunPaths(root, name)
    spec = io.read_json_object(paths.spec())
    meta, env = spec.get("meta") or {}, spec.get("env") or {}
    out.update(git_sha=meta.get("git_sha"), git_dirty=meta.get("git_dirty"), sessions=meta.get("max_session"),
               frames=env.get("max_frame"))
    trial = io.read_json_object(paths.trial_metrics(0))
    for k in ("total_reward_ma", "total_reward_ma_iqm", "total_reward_ma_ci_low", "total_reward_ma_ci_high"):
        out[k] = _num(trial.get(k))
    out["eval_total_reward_ma"] = _num(io.read_json_object(paths.trial_info_metrics(0, "eval", scalar=True))
                                       .get("total_reward_ma"))
    out["fps"] = _finished_sessions_fps(_session_dfs(root, name), out["frames"])
    ma = out["total_reward_ma"]
    if out["status"] == "finished" and ma is not None:
        out["beats_reference"] = None if row.reference is None else bool(ma >= row.reference)
        out["beats_target"] = None if row.target is None else bool(ma > row.target)
    return out


def _session_dfs(root: Path, name: str) -> list[pd.DataFrame]:
    return graphs.trial_session_dfs(RunPaths(root, name), 0)


def _finished_sessions_fps(dfs: list[pd.DataFrame], frames: Any) -> float | None:
    """The mean over sessions of a session's fps at its last log checkpoint, counting only the sessions
    that reached the row's frame budget: a session that has just started (or resumed) logs the speed
    of its first frames, before training starts, which says nothing of the row's speed."""
    budget = _num(frames)
    fps = [_num(df["fps"].iloc[-1]) for df in dfs
           if len(df) and "fps" in df and "frame" in df and budget is not None and df["frame"].iloc[-1] >= budget]
    fps = [f for f in fps if f is not None]
    return float(sum(fps) / len(fps)) if fps else None


# ---- markdown --------------------------------------------------------------------------------------
def _f(v: Any, digits: int = 2) -> str:
    v = _num(v)
    return "–" if v is None else f"{v + 0.0:,.{digits}f}"


def _mark(v: bool | None) -> str:
    return "–" if v is None else PASS if v else FAIL


def _short(n: Any) -> str:
    """2e5 for 200000: budgets read as they are written in papers."""
    if not isinstance(n, int):
        return "–"
    s = f"{n:.0e}".replace("e+0", "e").replace("e+", "e")
    return s if n >= 10_000 and float(s) == n else f"{n:,}"


def _sha(rec: dict) -> str:
    sha = rec.get("git_sha")
    return "–" if not sha else f"`{sha[:8]}{'+dirty' if rec.get('git_dirty') else ''}`"


def env_slug(env: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", env)


def table_markdown(records: list[dict]) -> str:
    head = ["Env", "Algorithm", "MA", "IQM", "95% CI", "Eval mean", "Ref. MA", "vs ref", "Target", "vs target",
            "Frames", "Sessions", "Wall time", "FPS", "Git SHA", "Run folder", "Status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in records:
        if r["status"] != "finished":  # a trial cut short reports its partial curves (the CSV keeps them): no result
            r = {**r, **dict.fromkeys(("total_reward_ma", "total_reward_ma_iqm", "total_reward_ma_ci_low",
                                       "total_reward_ma_ci_high", "eval_total_reward_ma"))}
        ci = "–" if r["total_reward_ma_ci_low"] is None else \
            f"[{_f(r['total_reward_ma_ci_low'])}, {_f(r['total_reward_ma_ci_high'])}]"
        status = r["status"] + (f": {r['error']}" if r.get("error") and r["status"] != "finished" else "")
        if r["status"] != "finished" and r.get("sessions_ended") and r["sessions"]:
            status += f" ({r['sessions_ended']} of {r['sessions']} sessions ended)"
        cells = [r["env"], r["algorithm"], _f(r["total_reward_ma"]), _f(r["total_reward_ma_iqm"]), ci,
                 _f(r["eval_total_reward_ma"]), _f(r["reference"]), _mark(r["beats_reference"]),
                 "–" if r["target"] is None else f"> {_f(r['target'], 0)}", _mark(r["beats_target"]),
                 _short(r["frames"]), "–" if r["sessions"] is None else str(r["sessions"]),
                 "–" if r["wall_time_s"] is None else duration(r["wall_time_s"]),
                 "–" if r["fps"] is None else f"{r['fps']:,.0f}", _sha(r),
                 f"`{r['run']}`" if r["run"] else "–", status.replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section_markdown(suite: Suite, records: list[dict], command: str, graph_links: dict[str, str]) -> str:
    """The whole section: header (command, frames, sessions, git SHA), legend, table, graphs."""
    frames: dict[str, list[str]] = {}
    for r in records:
        if r["frames"] is not None:
            frames.setdefault(_short(r["frames"]), [])
            if r["env"] not in frames[_short(r["frames"])]:
                frames[_short(r["frames"])].append(r["env"])
    sessions = sorted({r["sessions"] for r in records if r["sessions"] is not None})
    shas = sorted({_sha(r) for r in records if r.get("git_sha")})
    done = sum(r["status"] == "finished" for r in records)
    lines = [
        f"## {suite.name}: {suite.description}" if suite.description else f"## {suite.name}", "",
        f"- command: `{command}`",
        "- frames: " + ("; ".join(f"{k} ({', '.join(v)})" for k, v in frames.items()) or "–"),
        "- sessions: " + (", ".join(map(str, sessions)) or "–"),
        "- LoopLab git SHA: " + (shas[0] if len(shas) == 1 else f"{len(shas)} different, see the table" if shas
                                 else "–"),
        f"- rows finished: {done} of {len(records)}; written {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        "MA is the final trial `total_reward_ma`: the mean over sessions of each session's mean return over its "
        "last 100 log checkpoints, the statistic the reference publishes. IQM is the interquartile mean of the "
        "sessions' final MA and 95% CI its stratified bootstrap interval. Eval mean is the same MA of the greedy "
        "evaluation episodes (`meta.rigorous_eval`), where the spec asks for them. vs ref: "
        f"{PASS} when MA ≥ the reference MA; vs target: {PASS} when MA > the env's target. FPS: frames per second "
        "of a session at its end, the mean over the sessions that reached the row's frames; wall time: the whole trial's.",
        "",
        table_markdown(records),
    ]
    sources = sorted({r["reference_source"] for r in records if r.get("reference_source")})
    if sources:
        lines += ["", "Reference: " + "; ".join(sources) + "."]
    for env, link in graph_links.items():
        lines += ["", f"### {env}", "", f"![{env}: mean return (moving average) per algorithm]({link})"]
    return "\n".join(lines) + "\n"


# ---- files -----------------------------------------------------------------------------------------
def env_graphs(records: list[dict], data: Path, out: Path) -> dict[str, Path]:
    """One multi-trial graph per env (an algorithm's mean ± std curve each); returns env -> MA graph PNG."""
    by_env: dict[str, dict[str, list[pd.DataFrame]]] = {}
    for r in records:
        root = run_root(data, out, r["run"]) if r["status"] == "finished" else None  # results only, as the table
        if root is None:
            continue
        dfs = _session_dfs(root, str(read_status(root).get("spec_name") or root.name))
        if not dfs:
            continue
        trials = by_env.setdefault(r["env"], {})
        label = r["algorithm"] if r["algorithm"] not in trials else f"{r['algorithm']} ({r['row']})"
        trials[label] = dfs
    written = {}
    for env, trials in by_env.items():
        paths = graphs.multi_trial_graphs(out / "graphs", env_slug(env), trials, title=env)
        png = graph_file(out / "graphs", env_slug(env), "multi_trial_graph", MA_GRAPH)
        if png in paths:
            written[env] = png
    return written


def write_tables(suite: Suite, records: list[dict], data: Path, out: Path, command: str) -> Path:
    """`benchmark.md`, `benchmark.csv` and the per-env graphs in `out`; returns the markdown's path."""
    pngs = env_graphs(records, data, out)
    links = {env: str(p.relative_to(out)) for env, p in pngs.items()}
    md = out / "benchmark.md"
    io.write_text(md, section_markdown(suite, records, command, links))
    io.write_csv(out / "benchmark.csv", pd.DataFrame(records, columns=CSV_COLS))
    return md


def publish(suite: Suite, records: list[dict], command: str, out: Path, path: Path) -> Path:
    """Write the suite's section into `path` between its markers (other content kept), with its graphs
    copied next to it into `{stem}_graphs/`."""
    graph_dir = path.parent / f"{path.stem}_graphs"
    links = {}
    for env in dict.fromkeys(r["env"] for r in records):
        png = graph_file(out / "graphs", env_slug(env), "multi_trial_graph", MA_GRAPH)
        if png.is_file():
            target = graph_dir / f"{suite.name}_{env_slug(env)}.png"
            io.atomic_write(target, lambda f, src=png: f.write(src.read_bytes()), binary=True)
            links[env] = f"{graph_dir.name}/{target.name}"
    begin, end = f"<!-- looplab benchmark {suite.name}: begin -->", f"<!-- looplab benchmark {suite.name}: end -->"
    section = f"{begin}\n{section_markdown(suite, records, command, links)}{end}\n"
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as e:
        raise LoopLabError(f"--publish {path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        text = pre + section + rest.split(end, 1)[1].removeprefix("\n")
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "# Benchmarks\n\n") + section
    io.write_text(path, text)
    return path

