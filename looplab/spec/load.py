"""Load a spec from a JSON or YAML file: substitution, selection by name, overrides.

The result is a plain dict; `looplab.agent.validate.validate_spec` turns it into a typed `Spec`.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from looplab.errors import SpecError, did_you_mean

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
SPEC_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
VAR_RE = re.compile(r"\$\{([^}]*)\}")
LIBRARY = Path(__file__).parent / "library"


SLM_LAB = LIBRARY / "slm_lab"


def resolve_spec_path(spec_file: str) -> Path:
    """A path as given, else one of the shipped spec files.

    Shipped files are LoopLab's library (`demo.json`) and SLM Lab's own spec folders, addressed as
    `slm_lab/benchmark_arc/...` or with SLM Lab's own prefix `slm_lab/spec/benchmark_arc/...`.
    """
    path = Path(spec_file)
    if path.exists():
        return path
    if ".." not in Path(spec_file).parts:
        stripped = spec_file.removeprefix("slm_lab/spec/")
        for candidate in (LIBRARY / spec_file, SLM_LAB / stripped):
            if candidate.is_file():
                return candidate
    raise SpecError("spec file not found", file=spec_file)


def parse_vars(pairs: list[str] | None) -> dict[str, str]:
    """Parse `-s var=value` pairs."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise SpecError(f"bad -s '{pair}': expected var=value with var a name")
        out[key] = value
    return out


def parse_set(pairs: list[str] | None) -> list[tuple[str, Any]]:
    """Parse `--set dotted.path=value` pairs; values are JSON where they parse, else strings."""
    out: list[tuple[str, Any]] = []
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", key):
            raise SpecError(f"bad --set '{pair}': expected dotted.path=value")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.append((key, value))
    return out


def _canonical_number(value: str) -> str | None:
    """SLM Lab writes numeric substitutions as bare canonical numbers (4e6 -> 4000000)."""
    try:
        num = float(value)
    except ValueError:
        return None
    if num != num or num in (float("inf"), float("-inf")):
        return None
    return str(int(num)) if num.is_integer() and ("e" in value.lower() or "." not in value) else repr(num)


def substitute(text: str, variables: dict[str, str]) -> str:
    """Replace `${var}` placeholders; a quoted numeric placeholder becomes a bare number."""
    for var, value in variables.items():
        number = _canonical_number(value)
        if number is not None:
            text = text.replace(f'"${{{var}}}"', number).replace(f"'${{{var}}}'", number)
            text = text.replace(f"${{{var}}}", number)
        else:
            text = text.replace(f"${{{var}}}", value)
    return text


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict:
    """json's object_pairs_hook: a key written twice in one object is an error (json keeps the last silently)."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


class SpecLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, refusing a key written twice in one mapping (PyYAML keeps the last silently).
    Keys a merge (`<<: *anchor`) brings in may be overridden: only the mapping's own keys are compared."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            start, end = node.start_mark.index, node.end_mark.index
            seen: set[str] = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                if not start <= key_node.start_mark.index <= end:  # a merged-in key, written elsewhere
                    continue
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key '{key_node.value}' appears twice in one mapping", key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _parse(text: str, file: str) -> Any:
    suffix = Path(file).suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except _DuplicateKey as e:
            raise SpecError(f"invalid JSON: key '{e.args[0]}' appears twice in one object", file=file) from None
        except json.JSONDecodeError as e:
            before = text[:e.pos].rstrip()
            hint = " (a trailing comma before it? JSON allows none)" if before.endswith(",") and \
                text[e.pos:e.pos + 1] in "}]" else ""
            raise SpecError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}{hint}", file=file) from None
        except RecursionError:
            raise SpecError("nested too deeply to parse", file=file) from None
    try:
        return yaml.load(text, Loader=SpecLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise SpecError(f"invalid YAML{where}: {e.problem or e.context}", file=file) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {str(e).splitlines()[0]}", file=file) from None
    except RecursionError:
        raise SpecError("nested too deeply to parse", file=file) from None


def _check_depth(obj: Any, file: str, spec: str, depth: int = 0, path: str = "") -> None:
    if depth > MAX_DEPTH:
        raise SpecError(f"nested deeper than {MAX_DEPTH} levels", file=file, spec=spec, path=path or None)
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_depth(v, file, spec, depth + 1, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_depth(v, file, spec, depth + 1, f"{path}[{i}]")


def _leaves(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key path, value) of every scalar in a loaded spec, in document order."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else None
    if items is None:
        yield path, obj
        return
    for k, v in items:
        yield from _leaves(v, (f"{path}.{k}" if path else str(k)) if isinstance(obj, dict) else f"{path}[{k}]")


def _find_placeholder(obj: Any) -> tuple[str, str] | None:
    for path, v in _leaves(obj):
        m = VAR_RE.search(v) if isinstance(v, str) else None
        if m:
            return path, m.group(0)
    return None


def _find_nonfinite(obj: Any) -> tuple[str, float] | None:
    """The first inf or nan (JSON's Infinity/NaN, YAML's .inf/.nan): no spec key means one."""
    for path, v in _leaves(obj):
        if isinstance(v, float) and not math.isfinite(v):
            return path, v
    return None


def spec_names(data: dict) -> list[str]:
    return [k for k in data if isinstance(k, str) and not k.startswith("_")]


def apply_overrides(spec: dict, overrides: list[tuple[str, Any]], file: str, name: str) -> None:
    """Set each dotted path in place; intermediate keys must be mappings."""
    for dotted, value in overrides:
        keys = dotted.split(".")
        node = spec
        for i, key in enumerate(keys[:-1]):
            nxt = node.get(key)
            if nxt is None:
                nxt = node[key] = {}
            if not isinstance(nxt, dict):
                where = ".".join(keys[: i + 1])
                raise SpecError(f"--set {dotted}: '{where}' is not a mapping", file=file, spec=name, path=dotted)
            node = nxt
        node[keys[-1]] = value


def read_text(path: Path, file: str) -> str:
    """A spec-like file's text; errors name `file` (the path as the user gave it)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SpecError(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", file=file)
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError("not a UTF-8 text file", file=file) from None
    except OSError as e:
        raise SpecError(f"cannot read: {e.strerror}", file=file) from None


def load_raw(spec_file: str, variables: dict[str, str] | None = None) -> tuple[dict, str]:
    """Read and parse a whole spec file; returns (mapping of spec names to specs, display path)."""
    path = resolve_spec_path(spec_file)
    file = str(spec_file)
    if path.is_dir():
        raise SpecError("is a folder, not a spec file", file=file)
    text = read_text(path, file)
    if not text.strip():
        raise SpecError("file is empty", file=file)
    text = substitute(text, variables or {})
    data = _parse(text, file)
    if data is None:
        raise SpecError("file is empty", file=file)
    if not isinstance(data, dict):
        raise SpecError(f"top level must map spec names to specs, got a {type(data).__name__}", file=file)
    return data, file


def load_spec(
    spec_file: str,
    spec_name: str,
    variables: dict[str, str] | None = None,
    overrides: list[tuple[str, Any]] | None = None,
) -> tuple[dict, str]:
    """Load one spec as a dict; returns (spec, file). Raises SpecError with file/spec/key path."""
    data, file = load_raw(spec_file, variables)
    names = spec_names(data)
    if spec_name not in names:
        listed = ", ".join(sorted(map(str, names))[:30]) or "none"
        raise SpecError(f"no spec named '{spec_name}'{did_you_mean(spec_name, names)}; available: {listed}", file=file)
    if not SPEC_NAME_RE.fullmatch(spec_name) or ".." in spec_name:
        raise SpecError("spec name must be letters, digits, '_', '-', '.' (it names the run folder)", file=file,
                        spec=spec_name)
    spec = data[spec_name]
    if not isinstance(spec, dict):
        raise SpecError(f"a spec must be a mapping, got a {type(spec).__name__}", file=file, spec=spec_name)
    spec = copy.deepcopy(spec)
    _check_depth(spec, file, spec_name)
    apply_overrides(spec, overrides or [], file, spec_name)
    found = _find_placeholder(spec)
    if found:
        key, placeholder = found
        raise SpecError(f"unfilled placeholder {placeholder}: give it with -s {placeholder[2:-1]}=VALUE", file=file,
                        spec=spec_name, path=key)
    found = _find_nonfinite(spec)
    if found:
        key, value = found
        raise SpecError(f"must be a finite number, got {value}", file=file, spec=spec_name, path=key)
    name = spec_name
    if variables and "env" in variables:
        # SLM Lab names runs of `-s env=ALE/Pong-v5` as {spec}_pong.
        name = f"{spec_name}_{variables['env'].split('/')[-1].split('-')[0].lower()}"
        name = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
    spec["name"] = name
    return spec, file
