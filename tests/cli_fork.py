"""`looplab` commands for the tests, forked from a process that has already imported what a command imports.

A test that runs the command line as a user would (`python -m looplab.cli ...`) pays the imports of torch,
torch's compiler front end, pandas, the plotting libraries and LoopLab itself (2-4 s on a small machine)
before the command does anything, about as long as the short runs the tests make. Here one server process per
test worker imports them once; each command is a fork of it, given the command's arguments, environment
variables, working folder and files for its output, in which `looplab.cli.main` runs as in a new interpreter,
and whose exit status comes back as a subprocess's would (a negative signal number when a signal ended it).

What a fork cannot make as a new interpreter would, it leaves to a real subprocess (`Forks.run` returns None):
an environment that changes a variable read when Python or a preloaded library starts (`PYTHON*`, `OMP_*`,
`MKL_*`, `TORCH*`, `MPL*`, `CUDA*`). The server never runs LoopLab's code beyond its imports, so a fork starts
from no state of an earlier command; numpy's global generator, seeded when numpy is imported, is seeded again
in each fork as a new interpreter would.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRELOAD = ["looplab.cli", "looplab.experiment.run", "looplab.experiment.session", "looplab.analysis.report",
           "torch._dynamo", "torch.utils.tensorboard"]
STARTUP_PREFIXES = ("PYTHON", "OMP_", "MKL_", "TORCH", "MPL", "CUDA")


# ---- the server (a process of its own) -----------------------------------------------------------------
def serve() -> None:
    """Import PRELOAD, then for each request line on stdin fork a command and answer its pid, then its status."""
    import importlib

    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what an import prints goes where the server's errors go, not into the answers
    for name in PRELOAD:
        importlib.import_module(name)
    requests = sys.stdin.buffer
    _answer(answers, {"ready": os.getpid()})
    for line in requests:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            answers.close()
            _command(request)  # never returns
        _answer(answers, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _answer(answers, {"returncode": os.waitstatus_to_exitcode(status)})
    answers.close()
    os._exit(0)  # without the teardown of what it imported: seconds


def _answer(stream, message: dict) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def _command(request: dict) -> None:
    """In the fork: become `python -m looplab.cli ARGS` with the request's environment, folder and output."""
    code = 1
    try:
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY),
                                (2, request["stderr"], os.O_WRONLY)):
            target = os.open(path, flags)
            os.dup2(target, fd)
            os.close(target)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN if sig == signal.SIGPIPE else signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [str(ROOT / "looplab" / "cli.py"), *request["args"]]
        import numpy as np

        np.random.seed()
        from looplab.cli import main

        main()  # leaves by os._exit, or raises SystemExit where the ordinary exit is needed
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    try:  # the interpreter's own exit: threads that are not daemons, then atexit's functions
        threading._shutdown()
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


# ---- the client (in the test worker) --------------------------------------------------------------------
class Forks:
    """The server of this test worker, started at the first command."""

    def __init__(self) -> None:
        self.server: subprocess.Popen | None = None
        self.started_with: dict[str, str] | None = None  # the server's environment
        self.pending = b""  # what the server wrote after the last answer read

    @property
    def env(self) -> dict[str, str]:
        """The environment the server started with, or would start with now."""
        return self.started_with if self.started_with is not None else {**os.environ, "PYTHONHASHSEED": "0"}

    def _start(self) -> bool:
        if self.server is not None and self.server.poll() is None:
            return True
        self.started_with, self.pending = self.env, b""
        self.server = subprocess.Popen([sys.executable, "-c", "from tests.cli_fork import serve; serve()"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=self.env)
        ready = self._read(600)
        return ready is not None and "ready" in ready

    def _read(self, timeout: float) -> dict | None:
        """The server's next answer, or None if none comes within `timeout` s (or the server is gone)."""
        assert self.server is not None and self.server.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.server.stdout.fileno()
        while b"\n" not in self.pending:  # read the pipe itself: a buffered reader would hide a second line
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def fits(self, env: dict[str, str]) -> bool:
        """Whether a fork can stand for a new interpreter started with `env`."""
        keys = {k for k in (*env, *self.env) if k.startswith(STARTUP_PREFIXES)}
        return all(env.get(k) == self.env.get(k) for k in keys)

    def run(self, args: list[str], env: dict[str, str], timeout: float, cwd: Path = ROOT):
        """The command's CompletedProcess (text output), or None where it needs a real subprocess."""
        if not self.fits(env) or not self._start():
            return None
        with tempfile.TemporaryDirectory(prefix="looplab-cli-") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            out.touch()
            err.touch()
            request = {"args": list(args), "env": env, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
            assert self.server is not None and self.server.stdin is not None
            self.server.stdin.write((json.dumps(request) + "\n").encode())
            self.server.stdin.flush()
            started = self._read(60)
            if started is None:
                raise RuntimeError("the command server did not start the command")
            deadline = time.monotonic() + timeout
            done = self._read(deadline - time.monotonic())
            if done is None:
                os.kill(started["pid"], signal.SIGKILL)
                self._read(60)
                raise subprocess.TimeoutExpired(["looplab", *args], timeout, out.read_text(), err.read_text())
            return subprocess.CompletedProcess(["looplab", *args], done["returncode"], out.read_text(),
                                               err.read_text())

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.stdin.close()
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = self.started_with = None
