"""The `search` section (SLM Lab's syntax): `key__fn: args` leaves, nested or dotted, parsed and checked.

Each leaf becomes a `SearchKey` with an Optuna distribution that TPE samples in, and a `decode` from the
sampled raw value to the spec value with Ray Tune's semantics for `fn` (bounds, quantization, integer
upper bounds). `grid_search` keys are not sampled: their values are crossed with the sampled keys.
Optuna has no normal distribution, so `randn`/`qrandn` are sampled as a uniform quantile that `decode`
maps through the normal's inverse CDF: TPE still models them, and the values are normal.
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from looplab.errors import SpecError, did_you_mean

# fn -> (number of args, kind) in Ray Tune's argument order
FNS: dict[str, tuple[int, str]] = {
    "choice": (-1, "list"),
    "grid_search": (-1, "list"),
    "uniform": (2, "float"),
    "quniform": (3, "float"),
    "loguniform": (2, "float"),
    "qloguniform": (3, "float"),
    "randn": (2, "normal"),
    "qrandn": (3, "normal"),
    "randint": (2, "int"),
    "qrandint": (3, "int"),
    "lograndint": (2, "int"),
    "qlograndint": (3, "int"),
}
TRIAL_KEY = "trial"  # the key a searched configuration carries its LoopLab trial index under
_QUANTILE_EPS = 1e-6  # keeps the normal's inverse CDF finite


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _quantize(v: float, q: float) -> float:
    return round(v / q) * q


@dataclass(frozen=True)
class SearchKey:
    """One searched spec value: `path` in the spec, Ray Tune function `fn` and its `args`."""

    path: str
    fn: str
    args: tuple
    source: str  # the key as written under `search`, for error messages

    @property
    def is_grid(self) -> bool:
        return self.fn == "grid_search"

    @property
    def _scalar_choices(self) -> bool:
        return all(_is_scalar(v) for v in self.args)

    def distribution(self) -> Any:
        """The Optuna distribution TPE samples in (None for grid keys)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        fn, a = self.fn, self.args
        if fn == "grid_search":
            return None
        if fn == "choice":
            # Optuna categories must be scalars: lists and dicts are chosen by index
            return CategoricalDistribution(list(a) if self._scalar_choices else list(range(len(a))))
        if fn == "uniform":
            return FloatDistribution(a[0], a[1])
        if fn == "quniform":
            return FloatDistribution(a[0], a[1])
        if fn in ("loguniform", "qloguniform"):
            return FloatDistribution(a[0], a[1], log=True)
        if fn in ("randn", "qrandn"):
            return FloatDistribution(_QUANTILE_EPS, 1.0 - _QUANTILE_EPS)
        if fn == "randint":
            return IntDistribution(a[0], a[1] - 1)  # Ray's randint excludes the upper bound
        if fn == "lograndint":
            return IntDistribution(a[0], a[1] - 1, log=True)
        if fn == "qrandint":
            return IntDistribution(a[0], a[1], step=a[2])  # Ray's qrandint includes the upper bound
        if fn == "qlograndint":
            return IntDistribution(a[0], a[1], log=True)  # Optuna forbids step with log: quantized in decode
        raise AssertionError(fn)

    def decode(self, raw: Any) -> Any:
        """The spec value for a value sampled from `distribution()`."""
        fn, a = self.fn, self.args
        if fn == "choice":
            return copy.deepcopy(raw if self._scalar_choices else a[raw])
        if fn == "quniform":
            return float(min(max(_quantize(raw, a[2]), a[0]), a[1]))
        if fn == "qloguniform":
            return float(_quantize(raw, a[2]))
        if fn in ("randn", "qrandn"):
            v = NormalDist(a[0], a[1]).inv_cdf(raw)
            return float(_quantize(v, a[2]) if fn == "qrandn" else v)
        if fn == "qlograndint":
            return int(min(max(_quantize(raw, a[2]), a[0]), a[1]))
        if fn in ("randint", "lograndint", "qrandint"):
            return int(raw)
        return float(raw) if fn in ("uniform", "loguniform") else raw

    def candidates(self) -> list:
        """Values that span the key's range, used to validate the spec before anything runs."""
        fn, a = self.fn, self.args
        if fn in ("choice", "grid_search"):
            return [copy.deepcopy(v) for v in a]
        if fn in ("randn", "qrandn"):
            return [self.decode(0.5)]
        if fn in ("randint", "lograndint"):
            return [int(a[0]), int(a[1]) - 1]
        if fn in ("qrandint", "qlograndint"):
            return [self.decode(a[0]), self.decode(a[1])]
        return [self.decode(a[0]), self.decode(a[1])]


@dataclass
class SearchSpace:
    keys: list[SearchKey]

    @property
    def grid_keys(self) -> list[SearchKey]:
        return [k for k in self.keys if k.is_grid]

    @property
    def sampled_keys(self) -> list[SearchKey]:
        return [k for k in self.keys if not k.is_grid]

    @property
    def paths(self) -> list[str]:
        return [k.path for k in self.keys]

    def grid_points(self) -> list[dict[str, Any]]:
        """The cross product of the grid keys' values, in order ([{}] without grid keys)."""
        grid = self.grid_keys
        return [dict(zip([k.path for k in grid], copy.deepcopy(vals), strict=True))
                for vals in itertools.product(*[k.args for k in grid])]

    def optuna_space(self) -> dict[str, Any]:
        return {k.path: k.distribution() for k in self.sampled_keys}

    def decode(self, params: dict[str, Any]) -> dict[str, Any]:
        by_path = {k.path: k for k in self.sampled_keys}
        return {p: by_path[p].decode(v) for p, v in params.items()}


def _flatten(node: Any, prefix: str, out: list[tuple[str, Any]]) -> None:
    for key, value in node.items():
        key = str(key)
        full = f"{prefix}.{key}" if prefix else key
        if "__" in key:
            out.append((full, value))
        elif isinstance(value, dict):
            _flatten(value, full, out)
        else:
            raise SpecError("a search leaf must be named 'key__fn' (e.g. 'lr__loguniform'), "
                            "or be a mapping of such keys", path=f"search.{full}")


def _number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _check_args(fn: str, args: Any) -> str | None:
    """What is wrong with `args` for `fn`, or None."""
    n, kind = FNS[fn]
    if not isinstance(args, list):
        return f"arguments of {fn} must be a list, got {type(args).__name__} {args!r:.40}"
    if kind == "list":
        if not args:
            return f"{fn} needs a non-empty list of values"
        if fn == "grid_search" and len({repr(v) for v in args}) != len(args):
            return "grid_search values must be distinct"
        return None
    names = {"float": ["low", "high", "q"], "int": ["low", "high", "q"], "normal": ["mean", "sd", "q"]}[kind]
    if len(args) != n:
        return f"{fn} takes {n} arguments [{', '.join(names[:n])}], got {len(args)}"
    if not all(_number(v) for v in args):
        return f"arguments of {fn} must be finite numbers, got {args}"
    if kind == "int" and not all(float(v).is_integer() for v in args):
        return f"arguments of {fn} must be whole numbers, got {args}"
    if n == 3 and args[2] <= 0:
        return f"the quantization q of {fn} must be > 0, got {args[2]}"
    if kind == "normal":
        return None if args[1] > 0 else f"the sd of {fn} must be > 0, got {args[1]}"
    low, high = args[0], args[1]
    if fn in ("randint", "lograndint") and not low < high:
        return f"{fn} needs low < high (high is excluded), got {args}"
    if not low < high and not (fn in ("qrandint", "qlograndint") and low == high):
        return f"{fn} needs low < high, got {args}"
    if fn.startswith(("log", "qlog")) and low <= 0:
        return f"{fn} needs low > 0, got {args}"
    return None


def parse_search(search: Any) -> SearchSpace:
    """Parse a `search` section (nested mirror of the spec or dotted paths) into a SearchSpace."""
    if not isinstance(search, dict) or not search:
        raise SpecError("mode 'search' needs a non-empty `search` mapping of 'key__fn: args' leaves", path="search")
    leaves: list[tuple[str, Any]] = []
    _flatten(search, "", leaves)
    keys: list[SearchKey] = []
    seen: dict[str, str] = {}
    for source, args in leaves:
        path, _, fn = source.rpartition("__")
        where = f"search.{source}"
        if fn not in FNS:
            raise SpecError(f"unknown search function '{fn}'{did_you_mean(fn, FNS)}; known: {', '.join(FNS)}",
                            path=where)
        if not path or any(not p for p in path.split(".")):
            raise SpecError("a search key needs a spec key path before '__'", path=where)
        problem = _check_args(fn, args)
        if problem:
            raise SpecError(problem, path=where)
        if path in seen:
            raise SpecError(f"'{path}' is searched twice (also by search.{seen[path]})", path=where)
        for other in seen:
            if other.startswith(path + ".") or path.startswith(other + "."):
                raise SpecError(f"'{path}' overlaps search.{seen[other]}", path=where)
        seen[path] = source
        ints = FNS[fn][1] == "int"
        keys.append(SearchKey(path, fn, tuple(int(a) if ints else a for a in args), source))
    return SearchSpace(keys)


def set_path(spec: dict, path: str, value: Any) -> None:
    """Set a dotted path in a spec dict; missing mappings are created (SLM Lab's semantics)."""
    keys = path.split(".")
    node = spec
    for i, key in enumerate(keys[:-1]):
        nxt = node.setdefault(key, {})
        if not isinstance(nxt, dict):
            where = ".".join(keys[: i + 1])
            raise SpecError(f"'{where}' is not a mapping in the spec", path=path)
        node = nxt
    node[keys[-1]] = value


def apply_values(raw: dict, values: dict[str, Any]) -> dict:
    """A copy of the spec with the searched values set and without its `search` section."""
    out = copy.deepcopy(raw)
    out.pop("search", None)
    for path, value in values.items():
        set_path(out, path, copy.deepcopy(value))
    return out


def check_search(raw: dict, validate_spec: Callable[[dict, str | None, str | None], Any], file: str | None = None,
                 spec_name: str | None = None) -> SearchSpace:
    """Parse the search section and validate the spec (with `validate_spec`) at each key's extreme values.

    Raises SpecError.
    """
    try:
        space = parse_search(raw.get("search"))
        base = {k.path: k.candidates()[0] for k in space.keys}
        for key in space.keys:
            for value in key.candidates():
                try:
                    spec = apply_values(raw, {**base, key.path: value})
                    validate_spec(spec, file, spec_name)
                except SpecError as e:
                    inner = f"{e.path}: {e.message}" if e.path and e.path != key.path else e.message
                    raise SpecError(f"{inner} (with {key.path}={value!r:.60})", path=f"search.{key.source}") from None
    except SpecError as e:
        raise e.located(file, spec_name) from None
    return space
