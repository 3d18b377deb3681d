"""The processes a trial runs its sessions in: forked from a server that has already imported LoopLab.

A session process started with `spawn` imports Python's and LoopLab's modules afresh: torch, torch's
compiler front end (which its optimizers import on first use), Gymnasium, the plotting libraries. That
costs seconds per process, and the processes of a trial pay it at once, on the cores their sessions are
about to use. Here one server process (multiprocessing's `forkserver`) imports them once, started as soon
as a trial knows it will run sessions in parallel, so that its imports overlap the trial's own set-up;
each session process is then a fork of it, ready in milliseconds.

A process forked from the server is as fresh as a spawned one: it runs only what the server imported,
never the parent's threads or state. It gets the parent's working folder and `sys.path` from
multiprocessing, and its environment variables from `child_init`, as they are when the trial starts it. Where `forkserver` does not exist (Windows),
sessions are spawned as before.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from typing import Any

from looplab.env.pool import die_with_parent
from looplab.runfolder import alive
from looplab.spec import load_spec, parse_set, parse_vars

# what a session process imports before its first step (torch._dynamo: torch's optimizers import it lazily)
PRELOAD = ["looplab.experiment.session", "torch._dynamo"]


def session_context() -> BaseContext:
    """The multiprocessing context for session processes (and the trial's progress manager)."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm_up() -> None:
    """Start the fork server now, in the background: its imports overlap what the caller does next."""
    ctx = session_context()
    if ctx.get_start_method() != "forkserver":
        return
    threading.Thread(target=forkserver.ensure_running, name="looplab-forkserver", daemon=True).start()


def warm_up_for(spec_file: str, spec_name: str, set_vars: list[str] | None, overrides: list[str] | None) -> None:
    """`looplab run ... train`: start the server before the command's own imports when the spec asks for
    sessions in parallel, so that both import at once. A spec that does not load is left to the run to report."""
    try:
        raw, _ = load_spec(spec_file, spec_name, parse_vars(set_vars), parse_set(overrides))
        sessions = (raw.get("meta") or {}).get("max_session", 1)
    except Exception:  # the run reports it, located
        return
    if isinstance(sessions, int) and sessions > 1:
        warm_up()


def child_setup(parent_pid: int) -> dict[str, Any]:
    """What `child_init` needs to make a session process look spawned by the process with pid `parent_pid`."""
    return {"parent_pid": parent_pid, "environ": dict(os.environ)}


def child_init(setup: dict[str, Any]) -> None:
    """First thing in a session process: die with the trial, take its environment.

    A forked process's parent is the fork server, which exits when no process holding its "alive" pipe is
    left: this process lets go of its copy, so the server exits with the trial's process, however that
    ends, and the kernel then kills this one (PR_SET_PDEATHSIG), even a stopped one. As a second line, a
    thread waits on the trial's process (a pidfd where Linux has them, else a poll every 0.2 s) and
    SIGKILLs this process when it ends. The env workers this process starts follow it. A process whose
    trial is already gone exits at once.
    """
    _release_fork_server()
    die_with_parent()  # the fork server, which exits with the trial's process
    parent = setup["parent_pid"]
    watch = _watcher(parent)
    if watch is None:
        os._exit(1)
    start_daemon(watch, "looplab-trial-watch")
    if os.environ != setup["environ"]:
        os.environ.clear()
        os.environ.update(setup["environ"])


def start_daemon(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread that never receives SIGINT or SIGTERM: the kernel then hands them to the main thread,
    whose Python handler runs at once. (Handed to a helper thread that a busy machine schedules late, the
    main thread could take another step before the handler had run.)"""
    stops = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # the new thread inherits the mask
    try:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return thread


def _release_fork_server() -> None:
    """Close this process's end of the fork server's "alive" pipe (it starts no processes through it)."""
    fd = getattr(forkserver._forkserver, "_forkserver_alive_fd", None)
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
        forkserver._forkserver._forkserver_alive_fd = None
        forkserver._forkserver._forkserver_pid = None
        forkserver._forkserver._forkserver_address = None


def _watcher(pid: int) -> Callable[[], None] | None:
    """A function that returns once process `pid` has ended, killing this one; None if it already has."""
    def end() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except (AttributeError, OSError):  # no pidfd (not Linux, or an old kernel): poll
        if not alive(pid):
            return None

        def poll() -> None:
            while alive(pid):
                time.sleep(0.2)
            end()

        return poll

    def wait() -> None:
        select.select([fd], [], [])
        end()

    return wait
