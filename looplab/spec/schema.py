"""The strict, typed spec schema.

Top-level sections are pydantic models here. `agent.algorithm`, `agent.net` and `agent.memory` are
validated by the config model of the component their `name`/`type` selects in the registries, so a
new algorithm, net or memory brings its own keys with it (`looplab.agent.validate` does that step).
"""

from __future__ import annotations

import logging
import math
import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from looplab.errors import SpecError, did_you_mean


def to_count(v: Any) -> Any:
    """Accept 1e6, 1000000.0 and '1e6' for counts (SLM Lab casts them), reject bools and fractions."""
    if isinstance(v, bool):
        raise ValueError("must be a whole number, not a boolean")
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            raise ValueError(f"must be a whole number, got '{v}'") from None
    if isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise ValueError(f"must be a whole number, got {v}")
        return int(v)
    return v


Count = Annotated[int, BeforeValidator(to_count)]
PositiveCount = Annotated[int, BeforeValidator(to_count), Field(gt=0)]
NonNegCount = Annotated[int, BeforeValidator(to_count), Field(ge=0)]
Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Width = Annotated[int, Field(gt=0)]  # a layer's size: hid_layers entries
# sanity bounds: past them a spec is a mistake that would only hang (a million env copies to make one by one,
# a million session seeds to derive); each bound is far above what any published setup uses
MAX_NUM_ENVS = 65536
MAX_SESSIONS = 1024


def _at_most(limit: int, what: str) -> Any:
    def check(v: int) -> int:
        if v > limit:
            raise ValueError(f"{v} is more than the {limit} {what} LoopLab runs")
        return v
    return AfterValidator(check)


class Strict(BaseModel):
    """Base for every spec section: unknown keys are errors, types are strict (ints pass as floats)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=False)


class Open(Strict):
    """A section whose extra keys are passed on (e.g. optimizer kwargs)."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


class ClassSpec(Open):
    """`{name, **kwargs}` naming a torch class (optimizer, loss, lr scheduler)."""

    name: str


class EnvSpec(Open):
    """`env`: keys LoopLab consumes; any other key is passed to `gymnasium.make`."""

    name: str
    max_frame: PositiveCount
    num_envs: Annotated[PositiveCount, _at_most(MAX_NUM_ENVS, 'envs per session')] = 1
    max_t: PositiveCount | None = None  # steps per episode at most (a time limit); None: the env's own
    normalize_obs: bool = False
    normalize_reward: bool = False
    clip_obs: float | None = None
    clip_reward: float | list[float] | None = None
    reward_scale: float = 1.0  # learning-side rewards are multiplied by it (before normalize/clip)
    vectorization_mode: Literal["sync", "async", "auto", "vector_entry_point"] = "auto"
    frame_stack: PositiveCount | None = None  # the last k observations concatenated (env/transforms/frame_stack.py)
    # where an episode ends: `same_step` starts the next one in the same step; `next_step` (SLM Lab's vector envs)
    # one step later, a step that ignores its action and is learned from as (final obs -> first obs, reward 0);
    # None: SLM Lab's, `next_step` for num_envs > 1 (Atari excepted), `same_step` for a single env (env/make.py)
    autoreset: Literal["same_step", "next_step"] | None = None

    @field_validator("frame_stack")
    @classmethod
    def _not_atari(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and v != 1 and str(info.data.get("name", "")).startswith("ALE/"):
            raise ValueError("Atari observations are stacks of 4 frames already; leave frame_stack out")
        return v

    @field_validator("clip_obs")
    @classmethod
    def _clip_obs(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError(f"observations are clipped to [-v, v]: v must be greater than 0, got {v}")
        return v

    @field_validator("clip_reward")
    @classmethod
    def _clip_reward(cls, v: float | list[float] | None) -> float | list[float] | None:
        if isinstance(v, list):
            if len(v) != 2 or not v[0] < v[1]:
                raise ValueError(f"give [low, high] with low < high, or one number v for [-v, v]; got {v}")
        elif v is not None and not v > 0:
            raise ValueError(f"rewards are clipped to [-v, v]: v must be greater than 0, got {v}")
        return v

    @field_validator("reward_scale")
    @classmethod
    def _reward_scale(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"it multiplies the learning rewards: it must be greater than 0, got {v}")
        return v

    @field_validator("autoreset")
    @classmethod
    def _same_step_on_atari(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v == "next_step" and str(info.data.get("name", "")).startswith("ALE/"):
            raise ValueError("Atari envs reset in the same step (a lost life is not a reset); leave autoreset out")
        return v

    @field_validator("name")
    @classmethod
    def _env_known(cls, v: str, info: ValidationInfo) -> str:
        # the env layer's id check, handed in by the caller (the schema sits below the env layer)
        check_env_id = (info.context or {}).get("check_env_id")
        if check_env_id is not None:
            check_env_id(v)
        return v


class MetaSpec(Strict):
    """`meta`: run settings. Keys after `random_seed` are written by LoopLab into saved specs."""

    max_session: Annotated[PositiveCount, _at_most(MAX_SESSIONS, 'sessions per trial')]
    max_trial: PositiveCount | None = 1
    distributed: bool | str = False
    log_frequency: PositiveCount = 10000
    checkpoint_frequency: PositiveCount | None = None  # frames between full session checkpoints; None: by time
    # (the first log checkpoint, then one at least a minute after the last: session.CHECKPOINT_SECONDS)
    eval_frequency: PositiveCount = 10000
    rigorous_eval: NonNegCount | bool = 0
    search_resources: dict[str, float] | None = None
    search_scheduler: dict[str, Any] | None = None
    num_cpus: PositiveCount | None = None  # CPUs of a local Ray (search); default every core
    num_gpus: NonNegCount | None = None  # GPUs of a local Ray (search), at most the visible ones; default all
    tensorboard: bool = True
    tensorboard_histogram_frequency: NonNegCount = 10  # weight/gradient/action histograms every Nth log checkpoint
    max_nonfinite: PositiveCount = 20
    env_workers: PositiveCount | None = None  # env worker processes per session (default: usable cores)
    # --ray-address: whether the sessions write into the run folder (shared) or send their files to the
    # driver (send); auto: each session checks whether its node sees the run folder
    cluster_files: Literal["auto", "shared", "send"] = "auto"
    random_seed: NonNegCount | None = None
    # written by LoopLab into the resolved spec
    git_sha: str | None = None
    git_dirty: bool | None = None
    session_seeds: list[int] | None = None
    experiment_ts: str | None = None
    command: str | None = None
    versions: dict[str, str] | None = None
    trial: NonNegCount | None = None
    experiment: NonNegCount | None = None
    resume: bool | None = None
    machine: dict[str, Any] | None = None
    stop_frame: PositiveCount | None = None  # `looplab reproduce --frames`: stop there; schedules still see max_frame
    push: bool = False  # push the run folder to the Hub (HF_REPO) at the end of the run
    # written by SLM Lab into the specs it saves with a run (read by `analyze`/`report` on its run folders)
    session: int | None = None
    cuda_offset: int | None = None
    prepath: str | None = None
    predir: str | None = None
    graph_prepath: str | None = None
    info_prepath: str | None = None
    log_prepath: str | None = None
    model_prepath: str | None = None

    @field_validator("session_seeds")
    @classmethod
    def _session_seeds(cls, v: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if v is None:
            return v
        if any(s < 0 or s >= 2**32 for s in v):
            raise ValueError("every seed must be in [0, 2**32)")
        n = info.data.get("max_session")
        if n is not None and len(v) < n:
            raise ValueError(f"{len(v)} seed(s) for max_session {n}: give one per session, or null to derive "
                             f"them from random_seed")
        return v

    @field_validator("distributed")
    @classmethod
    def _distributed(cls, v: Any) -> Any:
        if v in (False, "false"):
            return False
        if v not in ("shared", "synced"):  # SLM Lab's Hogwild modes (looplab.agent.net.hogwild)
            raise ValueError(f"must be false, 'shared' or 'synced', got {v!r}")
        return v


class AgentSpec(Strict):
    name: str = "agent"
    algorithm: dict[str, Any]
    memory: dict[str, Any]
    net: dict[str, Any] | None = None
    critic_net: dict[str, Any] | None = None


class Spec(Strict):
    """A whole validated spec. Component sections are their registry's config models."""

    name: str
    agent: AgentSpec
    env: EnvSpec
    meta: MetaSpec
    search: dict[str, Any] | None = None
    # the component configs, filled by validate_spec
    algorithm: Any = Field(default=None, exclude=True)
    net: Any = Field(default=None, exclude=True)
    critic_net: Any = Field(default=None, exclude=True)
    memory: Any = Field(default=None, exclude=True)


def _fields_at(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    """Names of the fields of the model found at `loc` (for 'did you mean')."""
    for key in loc:
        if model is None or not isinstance(key, str) or key not in model.model_fields:
            break
        ann = model.model_fields[key].annotation
        candidates = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = candidates[0] if candidates else None
    return list(model.model_fields) if model is not None else []


def _data_loc(loc: tuple, data: Any) -> tuple:
    """`loc` less pydantic's names of union members (`int`, `function-after[...]`): the keys found in `data`,
    and a missing or unknown key where the error names one."""
    out, node = [], data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and i == len(loc) - 1:
            pass  # a missing key
        else:
            continue
        out.append(part)
    return tuple(out)


def _format_error(err: dict, model: type[BaseModel], data: Any) -> tuple[str, str]:
    loc = _data_loc(tuple(err["loc"]), data)
    path = ".".join(str(p) for p in loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        hint = did_you_mean(str(loc[-1]), _fields_at(model, loc[:-1]))
        return path, f"unknown key{hint}"
    if kind == "missing":
        return path, "required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind in ("int_from_float", "is_instance_of"):
        got = err.get("input")
        msg = f"{msg} (got {type(got).__name__} {got!r:.40})"
    return path, msg


def validate_model(model: type[BaseModel], data: Any, prefix: str = "", context: dict | None = None) -> Any:
    """Validate `data` with `model`; the first error becomes a SpecError with its key path.

    `context` reaches the models' validators (e.g. `check_env_id`, the env layer's id check).
    """
    if not isinstance(data, dict):
        raise SpecError(f"must be a mapping, got {type(data).__name__}", path=prefix or None)
    try:
        return model.model_validate(data, context=context)
    except pydantic.ValidationError as e:
        path, msg = _format_error(e.errors()[0], model, data)
        raise SpecError(msg, path=".".join(p for p in (prefix, path) if p)) from None
    except SpecError as e:
        raise e from None


# a number as YAML 1.2 and JSON write it; YAML 1.1 (PyYAML) reads e.g. `3e-4` (no dot) as a string
NUMBER_RE = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
NUMERIC_SECTIONS = ("agent", "env")
NAME_KEYS = ("name", "type")


def read_numeric_strings(node: Any, path: str = "") -> list[tuple[str, str, int | float]]:
    """Replace, in place, every numeric-looking string value under `node` (but names) by its number.

    Returns (key path, string, number) for each replacement, so that the caller can say so.
    """
    found: list[tuple[str, str, int | float]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        sub = f"{path}.{key}" if isinstance(node, dict) else f"{path}[{key}]"
        if isinstance(value, str) and key not in NAME_KEYS and NUMBER_RE.fullmatch(value.strip()):
            text = value.strip()
            number: int | float = int(text) if text.lstrip("+-").isdigit() else float(text)
            node[key] = number
            found.append((sub, value, number))
        elif isinstance(value, (dict, list)):
            found += read_numeric_strings(value, sub)
    return found


def spec_warning(file: str | None, spec_name: str | None, path: str, message: str) -> None:
    """One warning line about a spec key: 'looplab: warning: FILE: spec 'NAME': KEY: MESSAGE'."""
    where = ": ".join(x for x in (file, f"spec '{spec_name}'" if spec_name else None, path) if x)
    logging.getLogger("looplab").warning(f"looplab: warning: {where}: {message}")


def warn_numeric_strings(raw: dict, file: str | None, spec_name: str | None) -> None:
    """A number written so that the file's parser read a string (`lr: 3e-4` in YAML) is read as the number."""
    for section in NUMERIC_SECTIONS:
        if isinstance(raw.get(section), dict):
            for path, text, number in read_numeric_strings(raw[section], section):
                spec_warning(file, spec_name, path, f"the string '{text}' is read as the number {number!r} (YAML "
                                                    "1.1 reads a number like 3e-4, without a dot, as text)")
