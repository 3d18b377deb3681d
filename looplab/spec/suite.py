"""Benchmark suites: the rows `looplab benchmark` runs, each a spec with its budget, reference and target.

A suite file is YAML (or JSON) with `name`, optional `description` and `rows`; top-level keys starting
with `_` hold anchors (`<<: *phase1` merges shared row keys, as in SLM Lab's spec files). Suites shipped
with LoopLab live in `spec/library/suites/` and are named without a path, e.g. `slm_lab_classic`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from looplab.errors import SpecError, did_you_mean
from looplab.spec.load import LIBRARY, _parse, read_text
from looplab.spec.schema import PositiveCount, Strict, validate_model

SUITES = LIBRARY / "suites"
ROW_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,127}$")


class SuiteRow(Strict):
    """One cell of a benchmark table: a trial of `spec_name` in `spec_file`."""

    name: str | None = None  # unique in the suite; the spec name when absent
    env: str  # the env as the table names it (a spec may set `continuous: true` on another id)
    algorithm: str  # the algorithm as the table names it, e.g. "DDQN+PER"
    spec_file: str
    spec_name: str
    vars: dict[str, str | int | float] = Field(default_factory=dict)  # -s var=value
    sets: dict[str, Any] = Field(default_factory=dict, alias="set")  # --set dotted.path=value
    frames: PositiveCount | None = None  # env.max_frame; the spec's own when absent
    sessions: PositiveCount | None = None  # meta.max_session; the spec's own when absent
    reference: float | None = None  # the published final trial total_reward_ma
    source: str | None = None  # where `reference` was published
    target: float | None = None  # the env's solved threshold: MA above it passes

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str | None) -> str | None:
        if v is not None and not ROW_NAME_RE.fullmatch(v):
            raise ValueError("must be letters, digits and '_', '.', '+', '-'")
        return v

    @property
    def set_args(self) -> list[str]:
        """The `--set` overrides as command-line strings (budget included)."""
        import json

        out = [f"{k}={json.dumps(v)}" for k, v in self.sets.items()]
        if self.frames is not None:
            out.append(f"env.max_frame={self.frames}")
        if self.sessions is not None:
            out.append(f"meta.max_session={self.sessions}")
        return out

    @property
    def var_args(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.vars.items()]


class Suite(Strict):
    name: str
    description: str = ""
    rows: list[SuiteRow] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not ROW_NAME_RE.fullmatch(v):
            raise ValueError("must be letters, digits and '_', '.', '+', '-' (it names the output folder)")
        return v


def shipped_suites() -> list[str]:
    return sorted(p.stem for p in SUITES.glob("*.yaml"))


def resolve_suite_path(suite: str) -> Path:
    """A suite file as given, else a shipped suite by name."""
    path = Path(suite)
    if path.is_file():
        return path
    if re.fullmatch(r"[A-Za-z0-9_.\-]+", suite) and (SUITES / f"{suite}.yaml").is_file():
        return SUITES / f"{suite}.yaml"
    names = shipped_suites()
    raise SpecError(f"no suite file or shipped suite of that name{did_you_mean(suite, names)}; shipped suites: "
                    f"{', '.join(names) or 'none'}", file=suite)


def load_suite(suite: str) -> tuple[Suite, str]:
    """Read and validate a suite; returns (Suite, display path). Errors are one line naming file and key."""
    path = resolve_suite_path(suite)
    file = str(suite) if Path(suite).is_file() else str(path)
    text = read_text(path, file)
    data = _parse(text, file) if text.strip() else None
    if not isinstance(data, dict):
        raise SpecError(f"a suite must be a mapping with 'name' and 'rows', got {type(data).__name__}", file=file)
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("_"))}
    try:
        out = validate_model(Suite, data)
    except SpecError as e:
        raise e.located(file) from None
    seen: dict[str, int] = {}
    for i, row in enumerate(out.rows):
        row.name = row.name or row.spec_name
        if row.name in seen:
            raise SpecError(f"duplicate row name '{row.name}' (also rows.{seen[row.name]}): give each row a distinct "
                            "'name'", file=file, path=f"rows.{i}.name")
        seen[row.name] = i
    return out, file
