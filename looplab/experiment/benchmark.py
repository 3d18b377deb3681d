"""`looplab benchmark SUITE`: run a suite's rows as trials, one after another, resumably, and tabulate them.

Each row is a `train` trial in its own run folder under the data folder, made and run by the same
machinery as `looplab run` (`start_trial`, `execute`); an interrupted or killed row continues in its
folder through `train@RUN_DIR` (`resume_trial`). `benchmark_state.json` in the output folder records
which run folder belongs to which row, so a second invocation skips finished rows, resumes the
unfinished one and runs the rest. A finished row's record (specs, status, metrics, session dataframes;
no checkpoints) is copied into `OUT/runs/`, so the output folder alone (kept in a repository, say)
tabulates and skips its finished rows even where their run folders are gone.

A row can outlive the machine it runs on. While it runs, each of its sessions that ends is copied into
`OUT/runs/` too; where the row's run folder is gone, the next invocation (on the row's code) puts that
record back into the data folder and resumes: the sessions that ended are kept, the others run again
from their start, with the same seeds, so the row ends as it would have without the stop.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from looplab import io
from looplab.analysis import benchmark as table
from looplab.errors import LoopLabError, SpecError
from looplab.experiment.resume import code_shas, resume_trial
from looplab.experiment.run import execute, git_info, prepare, redacted_command, start_trial
from looplab.experiment.session import finished_earlier
from looplab.runfolder import SPEC_SUFFIX, STATUS, SUBDIRS, RunPaths, alive, data_dir, read_status
from looplab.spec.schema import Spec
from looplab.spec.suite import Suite, SuiteRow, load_suite

log = logging.getLogger("looplab.benchmark")
STATE_FILE = "benchmark_state.json"
DONE = ("finished", "failed")
# how often a running row's ended sessions are copied into the output folder (SessionArchiver)
ARCHIVE_SECONDS = 60.0


@dataclass
class Planned:
    """A selected row, validated, with what it will run."""

    index: int
    row: SuiteRow
    spec: Spec
    raw: dict[str, Any]
    file: str
    fingerprint: str

    @property
    def work(self) -> int:
        """Frames over all sessions: what the ETA divides time by."""
        return int(self.spec.env.max_frame) * int(self.spec.meta.max_session)


class State:
    """`benchmark_state.json`: row name -> {run, status, error, fingerprint, wall_time, ...}; atomic writes."""

    def __init__(self, path: Path, suite: Suite, data: Path):
        self.path = path
        self.doc: dict[str, Any] = {"suite": suite.name, "data_dir": str(data.resolve()), "rows": {}}
        if path.exists():
            try:
                doc = io.read_json(path)
            except (OSError, ValueError) as e:
                raise LoopLabError(f"{path}: cannot read the benchmark state: {e}") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("rows"), dict):
                raise LoopLabError(f"{path}: not a benchmark state file")
            moved = doc.get("data_dir") != self.doc["data_dir"]
            if moved:
                # finished rows keep their records in the output folder; unfinished ones whose run folders
                # are not in this data folder start again
                log.warning("%s: its runs were in the data folder %s; this invocation uses %s", path,
                            doc.get("data_dir"), self.doc["data_dir"])
            doc["data_dir"] = self.doc["data_dir"]
            self.doc.update(doc)
        self.rows: dict[str, dict] = self.doc["rows"]
        self.guard = threading.Lock()  # the row's SessionArchiver saves from its own thread

    def lock(self) -> None:
        pid = self.doc.get("pid")
        if pid and pid != os.getpid() and alive(pid):
            raise LoopLabError(f"{self.path}: another looplab benchmark (pid {pid}) is running this suite")
        self.doc["pid"] = os.getpid()
        self.save()

    def unlock(self) -> None:
        self.doc["pid"] = None
        self.save()

    def save(self) -> None:
        with self.guard:
            io.write_json(self.path, self.doc)


def select(rows: list[SuiteRow], pattern: str | None, file: str) -> list[int]:
    """Indices of the rows whose name, env or algorithm matches one of the comma-separated patterns
    (a glob, or else a substring; case-insensitive)."""
    if not pattern:
        return list(range(len(rows)))
    pats = [p.strip().lower() for p in pattern.split(",") if p.strip()]

    def hit(text: str, pat: str) -> bool:
        text = text.lower()
        return fnmatch.fnmatchcase(text, pat) if any(c in pat for c in "*?[") else pat in text

    out = [i for i, r in enumerate(rows) if any(hit(t, p) for p in pats for t in (r.name or "", r.env, r.algorithm))]
    if not out:
        raise LoopLabError(f"{file}: --rows {pattern}: no row matches (rows: {', '.join(r.name or '' for r in rows)})")
    return out


def plan(suite: Suite, file: str, indices: list[int], sessions: int | None, frames: int | None) -> list[Planned]:
    """Load and validate every selected row's spec before anything runs (one line naming the row)."""
    out = []
    for i in indices:
        row = suite.rows[i]
        if sessions is not None or frames is not None:
            row = row.model_copy(update={"sessions": sessions or row.sessions, "frames": frames or row.frames})
        try:
            raw, spec, spec_file = prepare(row.spec_file, row.spec_name, row.var_args, row.set_args)
        except SpecError as e:
            raise LoopLabError(f"{file}: rows.{i} ({row.name}): {e}") from None
        key = {"spec_file": row.spec_file, "spec_name": row.spec_name, "vars": row.vars, "set": row.sets,
               "frames": spec.env.max_frame, "sessions": spec.meta.max_session}
        fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        out.append(Planned(i, row, spec, raw, spec_file, fingerprint))
    return out


def default_out(data: Path, suite: Suite, sessions: int | None, frames: int | None) -> Path:
    """`DATA/benchmark/{suite}`; cheap runs with other budgets get their own folder, never the full run's."""
    suffix = (f"_frames{frames}" if frames else "") + (f"_sessions{sessions}" if sessions else "")
    return data / "benchmark" / f"{suite.name}{suffix}"


class Benchmark:
    def __init__(self, suite: Suite, file: str, data: Path, out: Path, quiet: bool, retry_failed: bool,
                 rerun: bool = False):
        self.suite, self.file, self.data, self.out = suite, file, data, out
        self.quiet = quiet
        self.retry_failed = retry_failed
        self.rerun = rerun
        self.state = State(out / STATE_FILE, suite, data)
        self.command = redacted_command(sys.argv)

    # ---- progress ---------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        log.info(text)
        if not self.quiet:
            print(f"benchmark {self.suite.name}: {text}", file=sys.stderr, flush=True)

    def eta(self, todo: list[Planned]) -> str:
        """Time left: each row's frames at the seconds per frame of the finished rows of its algorithm, or of
        all finished rows where none of its algorithm has finished (an off-policy row runs many times
        slower per frame than an on-policy one)."""
        done = {name: e for name, e in self.state.rows.items() if e.get("status") == "finished" and e.get("work")
                and e.get("wall_time")}
        if not done or not todo:
            return "ETA – (no finished row yet)" if todo else ""
        algorithm = {r.name: r.algorithm for r in self.suite.rows}

        def rate(entries: list[dict]) -> float:
            return sum(e["wall_time"] for e in entries) / sum(e["work"] for e in entries)

        overall = rate(list(done.values()))
        seconds = 0.0
        for p in todo:
            same = [e for name, e in done.items() if algorithm.get(name) == p.row.algorithm]
            seconds += (rate(same) if same else overall) * p.work
        return f"ETA {_hours(seconds)} (from {len(done)} finished row(s))"

    # ---- one row ------------------------------------------------------------------------------------
    def status_of(self, p: Planned) -> tuple[str, Path | None]:
        """What to do with a row: 'skip', 'resume' (its run folder) or 'start'."""
        entry = self.state.rows.get(p.row.name)
        if not entry or entry.get("fingerprint") != p.fingerprint:
            if entry:
                self.say(f"{p.row.name}: its spec or budget changed since {entry.get('run')}; it runs again")
            return "start", None
        root = self.data / entry["run"] if entry.get("run") else None
        if entry.get("status") == "finished" and entry.get("run") and table.archived(self.out, entry["run"]):
            made_by = self.rerun and self.made_by(entry["run"])
            if made_by:
                self.say(f"{p.row.name}: finished in {entry['run']} at git {made_by[:8]}; --rerun: it runs again on "
                         f"this code")
                return "start", None
            return "skip", root  # its record is kept in the output folder, with or without the run folder
        if root is not None and not root.is_dir() and entry.get("status") != "failed":
            self.restore(entry, root)
        if root is None or not root.is_dir():
            return "start", None
        run_status = read_status(root).get("status")
        if run_status == "finished":
            if entry.get("status") != "finished":  # killed between the trial's end and the state's update
                self.close_segment(entry, "finished", end=_last_write(root, entry.get("segment_started")))
            table.archive(root, self.out, entry["run"])
            return "skip", root
        if entry.get("status") == "failed" and not self.retry_failed:
            return "skip", root
        if entry.get("status") == "failed":
            return "start", None
        shas = _made_at(root, p.spec.name)
        if shas is None:
            return "start", None  # killed before the run folder held its spec: nothing to continue
        made_by, current = shas
        if made_by and "unknown" not in (made_by, current) and made_by != current:
            # a row's sessions all run on one code; its unfinished folder stays where it is
            self.say(f"{p.row.name}: {entry['run']} was made at git {made_by[:8]}, this is {current[:8]}; "
                     f"the row starts again (to continue it instead, run this from a checkout of {made_by[:8]})")
            return "start", None
        return "resume", root

    def made_by(self, run: str) -> str | None:
        """The git SHA that made a finished row's record, where it is not this code's (None where it is)."""
        made, current = _made_at(self.out / table.ARCHIVE / run, run) or (None, None)
        return made if made and made != current else None

    def restore(self, entry: dict, root: Path) -> None:
        """Put a row's record from the output folder (its sessions that ended, copied while it ran) back as its
        run folder, to be resumed; nothing if the output folder holds no such record."""
        src = self.out / table.ARCHIVE / entry["run"]
        if not any(src.glob(f"*{SPEC_SUFFIX}")):
            return
        tmp = root.with_name(f".{root.name}.restoring")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        for sub in SUBDIRS:
            (tmp / sub).mkdir(exist_ok=True)
        status = read_status(tmp)
        io.write_json(tmp / STATUS, {**status, "status": "interrupted", "pid": None})
        tmp.rename(root)
        if entry.get("segment_started") is not None:  # the stopped segment's time ends at its last sign of life
            self.close_segment(entry, None, end=entry.get("last_seen") or entry["segment_started"])
        self.say(f"{entry['run']}: its run folder is gone; {len(entry.get('sessions_ended') or [])} session(s) that "
                 f"ended are put back from {src}, the others run again")

    def close_segment(self, entry: dict, status: str | None, error: str | None = None,
                      end: float | None = None) -> None:
        """Add the segment's time (until `end`, default now) to the row's wall time; set its status."""
        started = entry.pop("segment_started", None)
        if started is not None:
            entry["wall_time"] = float(entry.get("wall_time") or 0.0) + max(0.0, (end or time.time()) - started)
        if status is not None:
            entry.update(status=status, error=error)
            if status == "finished":
                entry["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        self.state.save()

    def run_row(self, p: Planned, action: str, root: Path | None) -> None:
        entry = self.state.rows.get(p.row.name) if action == "resume" else None
        if entry is not None and entry.get("segment_started") is not None:
            # the last invocation was killed in this row: its time ends at the last file the run wrote
            self.close_segment(entry, None, end=_last_write(root, entry["segment_started"]))
        try:
            if action == "resume":
                paths, trial = resume_trial(p.row.spec_file, p.spec.name, str(root), str(self.data), self.quiet)
            else:
                paths, trial = start_trial(p.raw, p.spec, p.file, "train", str(self.data), self.quiet)
        except Exception as e:  # a run folder that cannot be made or continued fails its row only
            entry = entry if entry is not None else self.state.rows.setdefault(
                p.row.name, {"run": None, "fingerprint": p.fingerprint, "work": p.work, "wall_time": 0.0})
            self.fail(p, entry, e)
            return
        if action == "start":
            entry = self.state.rows[p.row.name] = {
                "run": str(paths.root.relative_to(self.data)), "fingerprint": p.fingerprint, "work": p.work,
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "wall_time": 0.0}
        assert entry is not None
        entry.update(status="running", error=None, segment_started=time.time())
        self.state.save()
        archiver = SessionArchiver(self.state, entry, p.spec, paths, self.out)
        archiver.start()
        try:
            execute(paths, trial)
        except KeyboardInterrupt:
            archiver.stop()
            self.close_segment(entry, "interrupted")
            raise
        except Exception as e:  # recorded, and the suite goes on
            archiver.stop()
            self.fail(p, entry, e)
            return
        archiver.stop()
        self.close_segment(entry, "finished")
        table.archive(paths.root, self.out, entry["run"])

    def fail(self, p: Planned, entry: dict, e: Exception) -> None:
        log.error("%s failed:\n%s", p.row.name, traceback.format_exc())
        self.close_segment(entry, "failed", _one_line(e))
        self.say(f"{p.row.name}: failed: {_one_line(e)}")

    # ---- the suite ----------------------------------------------------------------------------------
    def run(self, planned: list[Planned], publish: Path | None) -> Path:
        self.state.lock()
        try:
            todo = []
            for p in planned:
                action, root = self.status_of(p)
                if action == "skip":
                    self.say(f"{p.row.name}: {self.state.rows[p.row.name]['status']} earlier in {root}; skipped")
                else:
                    todo.append((p, action, root))
            for k, (p, action, root) in enumerate(todo):
                self.say(f"row {p.index + 1} of {len(self.suite.rows)}: {p.row.name} ({p.row.env}, {p.row.algorithm}, "
                         f"{p.spec.env.max_frame:,} frames x {p.spec.meta.max_session} sessions) "
                         f"{'resumes in ' + str(root) if action == 'resume' else 'starts'} | {k + 1} of {len(todo)} "
                         f"to run | {self.eta([q for q, _, _ in todo[k:]])}")
                try:
                    self.run_row(p, action, root)
                finally:
                    md = self.write(publish)
            return md if todo else self.write(publish)
        finally:
            self.state.unlock()

    def write(self, publish: Path | None) -> Path:
        records = [table.record(self.suite, row, self.state.rows.get(row.name), self.data, self.out)
                   for row in self.suite.rows]
        envs = list(dict.fromkeys(r["env"] for r in records))
        records.sort(key=lambda r: envs.index(r["env"]))  # grouped by env, in the suite's order within each
        md = table.write_tables(self.suite, records, self.data, self.out, self.command)
        if publish is not None:
            table.publish(self.suite, records, self.command, self.out, publish)
        return md


class SessionArchiver:
    """While a row runs, copies each of its sessions that ended (dataframes and metrics, with the run's specs
    and status) into `OUT/runs/RUN` every ARCHIVE_SECONDS, and records them, with the time, in the state
    file: what a new machine needs to continue the row (`Benchmark.restore`)."""

    def __init__(self, state: State, entry: dict, spec: Spec, paths: RunPaths, out: Path):
        self.state, self.entry, self.spec, self.paths, self.out = state, entry, spec, paths, out
        self.ended: set[int] = set()
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="session-archiver", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.halt.set()
        self.thread.join()
        self.once()

    def loop(self) -> None:
        while not self.halt.wait(ARCHIVE_SECONDS):
            try:
                self.once()
            except Exception as e:  # a copy that fails (a full disk) is tried again; the row goes on
                log.warning("%s: ended sessions not copied to %s: %s", self.paths.root, self.out, _one_line(e))

    def once(self) -> None:
        n = self.spec.meta.max_session
        new = [s for s in range(n) if s not in self.ended and finished_earlier(self.spec, self.paths, 0, s) is not None]
        if new:
            patterns = (f"*{SPEC_SUFFIX}", STATUS) + tuple(f"info/{self.paths.prename(0, s)}_*" for s in new)
            table.archive(self.paths.root, self.out, self.paths.root.name, patterns)
            self.ended.update(new)
        with self.state.guard:
            self.entry.update(sessions_ended=sorted(self.ended | set(self.entry.get("sessions_ended") or [])),
                              last_seen=time.time())
        self.state.save()


def _made_at(root: Path, name: str) -> tuple[str | None, str] | None:
    """(the git SHA that made the run in `root`, this code's), from its saved spec; None if it has none."""
    spec = RunPaths(root, read_status(root).get("spec_name") or name).spec()
    return code_shas(json.loads(spec.read_text())) if spec.exists() else None


def _last_write(root: Path | None, since: float | None) -> float:
    """The newest modification time of the run's files after `since` (a killed process's last sign of life)."""
    newest = since or 0.0
    if root is not None and root.is_dir():
        for p in root.rglob("*"):
            try:
                newest = max(newest, p.stat().st_mtime)
            except OSError:
                pass
    return newest


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    if not lines:
        return type(e).__name__
    return lines[0] if isinstance(e, LoopLabError) else f"{type(e).__name__}: {lines[0]}"


def _count(option: str, value: int | str | None) -> int | None:
    """A positive whole number; 2e5 and 200000.0 are accepted."""
    if value is None:
        return None
    try:
        num = float(value)
    except ValueError:
        num = float("nan")
    if not num.is_integer() or num < 1:
        raise LoopLabError(f"{option} must be a whole number of at least 1, got {value}")
    return int(num)


def _hours(seconds: float) -> str:
    m = int(round(seconds / 60))
    return f"{m // 60}h {m % 60:02d}m" if m >= 60 else f"{m}m"


def run_benchmark(suite_arg: str, out: str | None = None, rows: str | None = None, sessions: int | None = None,
                  frames: int | str | None = None, data: str | None = None, quiet: bool = False,
                  publish: str | None = None, retry_failed: bool = False, rerun: bool = False) -> Path:
    """Run (or continue) a suite; returns the path of its `benchmark.md`."""
    sessions, frames = _count("--sessions", sessions), _count("--frames", frames)
    if rerun and git_info()[0] == "unknown":
        raise LoopLabError("--rerun runs again the rows made at another git SHA than this code's, and this code's "
                           "is unknown (not a git checkout)")
    suite, file = load_suite(suite_arg)
    planned = plan(suite, file, select(suite.rows, rows, file), sessions, frames)
    root = data_dir(data)
    out_dir = Path(out) if out else default_out(root, suite, sessions, frames)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LoopLabError(f"cannot create {out_dir}: {e.strerror}") from None
    handler = logging.FileHandler(out_dir / "benchmark.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)s | PID:%(process)d | %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        bench = Benchmark(suite, file, root, out_dir, quiet, retry_failed, rerun)
        md = bench.run(planned, Path(publish) if publish else None)
    finally:
        log.removeHandler(handler)
        handler.close()
    if not quiet:
        print(f"benchmark table: {md}", file=sys.stderr)
    return md
