"""The run table of `looplab list`: one row per run folder, from its status file and session dataframes.

Light to import (no torch, no pandas, no plotting), as the Hub's commands use it too.
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path

from looplab.analysis.text import duration, fmt
from looplab.runfolder import STATUS, RunPaths, data_dir, is_run, read_status, run_state
from looplab.spec.catalog import matches, table_console

LIST_COLS = ["name", "date", "env", "algorithm", "frames", "total_reward_ma", "strength", "wall time", "status"]


def list_runs(pattern: str | None = None, data: str | None = None) -> list[dict]:
    """One row per run folder in the data folder (newest first), filtered by PATTERN (glob or substring)."""
    root = data_dir(data)
    if not root.is_dir():
        return []
    rows = []
    for d in root.iterdir():
        if not d.is_dir() or not is_run(d):
            continue
        if not matches(d.name, pattern):
            continue
        rows.append(run_row(d))
    return sorted(rows, key=lambda r: r["_mtime"], reverse=True)


def run_row(d: Path) -> dict:
    """The `looplab list` row of one run folder (plus `_mtime`, for sorting)."""
    st = read_status(d)
    state = run_state(st)
    frame, ma = st.get("frame"), st.get("total_reward_ma")
    if frame is None or ma is None:  # running or stopped early: the sessions' latest rows tell how far it got
        frame, ma = _latest(d, st.get("spec_name", ""))
    wall = st.get("wall_time")
    if wall is None and state == "running" and st.get("started"):
        try:
            wall = time.time() - time.mktime(time.strptime(st["started"], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            wall = None
    return {"name": d.name, "date": st.get("started", ""), "env": st.get("env", ""),
            "algorithm": st.get("algorithm", ""), "frames": frame, "total_reward_ma": ma,
            "strength": st.get("strength"), "wall time": wall, "status": state,
            "_mtime": (d / STATUS if is_run(d) else d).stat().st_mtime}


def _latest(d: Path, name: str) -> tuple[int | None, float | None]:
    """The furthest frame any session reached and the mean of their latest moving averages."""
    frames, mas = [], []
    paths = RunPaths(d, name)
    for p in paths.info_dir.glob(paths.session_dfs(kind="train")):
        last = _last_row(p)
        try:
            frames.append(int(float(last["frame"])))
        except (KeyError, TypeError, ValueError):
            continue
        ma = _number(last.get("total_reward_ma"))
        if ma is not None:
            mas.append(ma)
    return (max(frames) if frames else None), (sum(mas) / len(mas) if mas else None)


def _last_row(path: Path) -> dict[str, str]:
    """The last complete row of a session dataframe (CSV) by its header's names, reading only the file's end."""
    try:
        with open(path, "rb") as f:
            header = f.readline()
            start = max(f.seek(0, os.SEEK_END) - 65536, len(header))
            f.seek(start)
            tail = f.read().decode(errors="replace").splitlines()
    except OSError:
        return {}
    names = next(csv.reader([header.decode(errors="replace")]), [])
    for line in reversed(tail if start == len(header) else tail[1:]):  # a line cut by the seek is no row
        row = next(csv.reader([line]), [])
        if names and len(row) == len(names):
            return dict(zip(names, row, strict=True))
    return {}


def _number(v: str | None) -> float | None:
    try:
        x = float(v) if v not in (None, "") else None
    except ValueError:
        return None
    return x if x is not None and math.isfinite(x) else None


def print_runs(rows: list[dict], data: str | None = None) -> None:
    from rich.table import Table

    console = table_console()
    if not rows:
        console.print(f"no runs in {data_dir(data)}")
        return
    colors = {"finished": "green", "running": "cyan", "interrupted": "yellow", "failed": "red"}
    table = Table(show_header=True, header_style="bold")
    for c in LIST_COLS:
        table.add_column(c, justify="right" if c in ("frames", "total_reward_ma", "strength", "wall time") else "left",
                         no_wrap=c in ("name", "date"))
    for r in rows:
        cells = [fmt(r[c]) if c not in ("wall time", "status") else "" for c in LIST_COLS]
        cells[LIST_COLS.index("wall time")] = duration(r["wall time"]) if r["wall time"] is not None else "–"
        color = colors.get(r["status"], "white")
        cells[LIST_COLS.index("status")] = f"[{color}]{r['status']}[/{color}]"
        table.add_row(*cells)
    console.print(table)
