"""The shipped spec files (LoopLab's library and SLM Lab's own folders) as a table: `looplab specs`."""

from __future__ import annotations

import fnmatch
from typing import Any

from looplab.errors import LoopLabError
from looplab.spec.load import LIBRARY, SLM_LAB, load_raw, spec_names

SPECS_COLS = ["file", "spec", "env", "algorithm", "max_frame", "num_envs"]
SPEC_SUFFIXES = (".json", ".yaml", ".yml")


def matches(text: str, pattern: str | None) -> bool:
    """A glob (when PATTERN has * ? or [) or a substring match; no pattern matches everything."""
    if not pattern:
        return True
    return fnmatch.fnmatch(text, pattern) if any(c in pattern for c in "*?[") else pattern in text


def shipped_files() -> list[str]:
    """Every shipped spec file, named as `looplab run` takes it (`demo.json`, `slm_lab/benchmark/...`)."""
    own = sorted(p.name for p in LIBRARY.iterdir() if p.suffix in SPEC_SUFFIXES)
    slm = sorted(f"slm_lab/{p.relative_to(SLM_LAB).as_posix()}" for p in SLM_LAB.rglob("*")
                 if p.suffix in SPEC_SUFFIXES and not p.name.startswith("_"))
    return own + slm


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def shipped_specs(pattern: str | None = None) -> list[dict]:
    """One row per (file, spec name) whose file path or spec name matches PATTERN."""
    rows = []
    for file in shipped_files():
        try:
            data, _ = load_raw(file)
        except LoopLabError:
            continue
        for name in spec_names(data):
            if not (matches(file, pattern) or matches(name, pattern)):
                continue
            spec = data[name]
            rows.append({"file": file, "spec": name, "env": _get(spec, "env", "name"),
                         "algorithm": _get(spec, "agent", "algorithm", "name"),
                         "max_frame": _get(spec, "env", "max_frame"), "num_envs": _get(spec, "env", "num_envs") or 1})
    return rows


def _cell(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return f"{int(v):,}"
    return f"{v:,}" if isinstance(v, int) else "–" if v is None else str(v)


def table_console() -> Any:
    """A rich console for the command tables: the terminal's width, or 250 columns when piped (never truncate)."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 250)


def print_specs(rows: list[dict]) -> None:
    from rich.table import Table

    console = table_console()
    if not rows:
        console.print("no shipped spec matches")
        return
    table = Table(show_header=True, header_style="bold")
    for c in SPECS_COLS:
        table.add_column(c, justify="right" if c in ("max_frame", "num_envs") else "left", no_wrap=c in ("file", "spec"))
    for r in rows:
        table.add_row(*(_cell(r[c]) for c in SPECS_COLS))
    console.print(table)
    console.print(f"{len(rows)} specs; run one with: looplab run FILE SPEC [MODE] (-s var=value fills ${{var}})")
