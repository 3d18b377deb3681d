"""The package's layer order and import rules, held by import-linter (see ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("importlinter", reason="import-linter is in the dev extra")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the contracts of pyproject.toml, on the `looplab` package found under `root`."""
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return subprocess.run([*cmd, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


@pytest.mark.parametrize("module, forbidden", [
    ("runfolder.py", "from looplab.cli import main"),  # the ground importing the top
    ("analysis/commands.py", "from looplab.experiment.run import execute"),  # analysis importing experiment
    ("agent/net/mlp.py", "from looplab.agent.memory.base import Memory"),  # two independent packages
    ("analysis/graphs.py", "from looplab.analysis.report import fmt"),  # a loop inside a package
])
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, forbidden):
    copy = tmp_path / "looplab"
    shutil.copytree(ROOT / "looplab", copy, ignore=shutil.ignore_patterns("library", "__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n\ndef _forbidden():\n    {forbidden}  # noqa\n")
    out = lint_imports(tmp_path)
    assert out.returncode != 0 and "BROKEN" in out.stdout, out.stdout[-3000:]


def test_looplab_imports_sit_at_module_level():
    """Imports inside functions hide loops; only the CLI defers its commands' imports (it starts in 0.4 s)."""
    local = []
    for path in sorted((ROOT / "looplab").rglob("*.py")):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    names = ([inner.module or ""] if isinstance(inner, ast.ImportFrom)
                             else [a.name for a in inner.names] if isinstance(inner, ast.Import) else [])
                    if any(n == "looplab" or n.startswith("looplab.") for n in names):
                        local.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert not local, f"function-local looplab imports: {local}"
