"""Shared fixtures: an isolated data folder and cache, and a way to run the CLI as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_fork import Forks

ROOT = Path(__file__).resolve().parents[1]
# SLM Lab's spec files as shipped inside the package (MIT; see their README there)
SLM_SPECS = ROOT / "looplab" / "spec" / "library" / "slm_lab"
TEST_SPECS = Path(__file__).parent / "data"


def placeholder_values(path: Path) -> list[str]:
    """-s values for the ${var} placeholders of a shipped spec file: an env its specs fit, a million frames."""
    values = {"env": "ALE/Pong-v5" if "atari" in path.name else "HalfCheetah-v5", "max_frame": "1e6"}
    names = set(re.findall(r"\$\{([^}]*)\}", path.read_text()))
    return [f"{n}={values[n]}" for n in sorted(names)]


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """Every test gets its own cache (random baselines) unless it asks otherwise; no stray data/."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("LOOPLAB_CACHE_DIR", str(cache))
    monkeypatch.setenv("LOOPLAB_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data-default"))


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


FORKS = Forks()


@pytest.fixture(scope="session", autouse=True)
def _command_server():
    yield
    FORKS.stop()


def run_cli(*args: str, data_dir: Path | None = None, timeout: float = 300, env: dict | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run `looplab ARGS` as a new process (text output): a fork of this worker's command server
    (tests/cli_fork.py), or `python -m looplab.cli` where a fork cannot stand for it or
    LOOPLAB_TEST_SUBPROCESS=1 asks for it."""
    args = (*args, "--data-dir", str(data_dir)) if data_dir is not None else args
    full_env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    proc = None
    if os.environ.get("LOOPLAB_TEST_SUBPROCESS") != "1":
        proc = FORKS.run(list(args), full_env, timeout)
    if proc is None:
        proc = subprocess.run([sys.executable, "-m", "looplab.cli", *args], capture_output=True, text=True,
                              timeout=timeout, env=full_env, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"looplab {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def only_run(data_dir: Path) -> Path:
    runs = [p for p in data_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def drop_into_package(registry, package, source: str, tmp_path: Path, monkeypatch):
    """`dropped_in.py` (holding `source`) in a folder on `package`'s path, and `registry` restored to what it
    held after its own discovery, not yet looked up again. A generator for a fixture: yield from it."""
    registry.discover()  # the shipped items first, so that the registry restored afterwards holds them
    (tmp_path / "dropped_in.py").write_text(source)
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_items", dict(registry._items))
    monkeypatch.setattr(registry, "_discovered", False)
    yield
    sys.modules.pop(f"{package.__name__}.dropped_in", None)
