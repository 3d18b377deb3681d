"""Optimizers, losses and lr schedulers named in a spec (`optim_spec`, `loss_spec`, `lr_scheduler_spec`)."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from looplab.errors import did_you_mean
from looplab.spec.schema import ClassSpec

# SLM Lab's optimizers for Hogwild: plain ones whose state looplab.agent.net.hogwild puts in shared memory.
OPTIM_ALIASES = {"GlobalAdam": "Adam", "GlobalRMSprop": "RMSprop"}
_FUSED_OK = {"Adam", "AdamW", "SGD", "Adagrad"}


def _optim_classes() -> dict[str, type]:
    return {n: c for n, c in vars(torch.optim).items()
            if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer}


def _loss_classes() -> dict[str, type]:
    return {n: c for n, c in vars(torch.nn).items()
            if inspect.isclass(c) and n.endswith("Loss") and issubclass(c, torch.nn.Module)}


def _scheduler_classes() -> dict[str, type]:
    sched = torch.optim.lr_scheduler
    return {n: c for n, c in vars(sched).items()
            if inspect.isclass(c) and issubclass(c, sched.LRScheduler) and c is not sched.LRScheduler}


def _kwargs(spec: ClassSpec) -> dict:
    return dict(spec.model_extra or {})


def check_optim_spec(spec: ClassSpec) -> None:
    name = OPTIM_ALIASES.get(spec.name, spec.name)
    classes = _optim_classes()
    if name not in classes:
        raise ValueError(f"unknown optimizer '{spec.name}'{did_you_mean(spec.name, classes)}")
    try:
        classes[name]([torch.nn.Parameter(torch.zeros(1))], **_kwargs(spec))
    except (TypeError, ValueError) as e:
        raise ValueError(f"bad arguments for {spec.name}: {e}") from None


def make_optim(spec: ClassSpec, params: Any) -> torch.optim.Optimizer:
    name = OPTIM_ALIASES.get(spec.name, spec.name)
    kwargs = _kwargs(spec)
    if name in _FUSED_OK and "fused" not in kwargs and "foreach" not in kwargs:
        kwargs["fused"] = True  # one kernel for the whole step: ~3x faster on small nets
    return _optim_classes()[name](params, **kwargs)


def check_loss_spec(spec: ClassSpec) -> None:
    classes = _loss_classes()
    if spec.name not in classes:
        raise ValueError(f"unknown loss '{spec.name}'{did_you_mean(spec.name, classes)}")
    try:
        classes[spec.name](**_kwargs(spec))
    except (TypeError, ValueError) as e:
        raise ValueError(f"bad arguments for {spec.name}: {e}") from None


def make_loss(spec: ClassSpec | None) -> torch.nn.Module:
    if spec is None:
        return torch.nn.MSELoss()
    return _loss_classes()[spec.name](**_kwargs(spec))


LR_SCHEDULERS_OWN = ("LinearToZero", "LinearToMin")


def check_lr_scheduler_spec(spec: ClassSpec) -> None:
    if spec.name in LR_SCHEDULERS_OWN:
        kwargs = spec.model_extra or {}
        allowed = {"frame", "min_factor"} if spec.name == "LinearToMin" else {"frame"}
        if "frame" not in kwargs:
            raise ValueError(f"{spec.name} needs 'frame' (the frames over which lr decays)")
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise ValueError(f"unknown key '{unknown[0]}' for {spec.name}{did_you_mean(unknown[0], allowed)}")
        if spec.name == "LinearToMin" and not 0.0 <= float(kwargs.get("min_factor", 0.1)) <= 1.0:
            raise ValueError("LinearToMin's min_factor must be in [0, 1]")
        return
    classes = _scheduler_classes()
    if spec.name not in classes:
        known = list(classes) + list(LR_SCHEDULERS_OWN)
        raise ValueError(f"unknown lr scheduler '{spec.name}'{did_you_mean(spec.name, known)}")


def make_lr_scheduler(spec: ClassSpec | None, optim: torch.optim.Optimizer, frames_per_update: int) -> Any:
    """An lr scheduler stepped once per training call; `frame` counts are converted to such calls.

    LinearToZero: lr falls linearly to 0 at `frame` frames. LinearToMin: lr falls linearly to
    `min_factor` (default 0.1) times its start at `frame` frames, then stays there (the scheduler of
    SLM Lab's MuJoCo Playground specs, absent from its master branch).
    """
    if spec is None:
        return None
    kwargs = _kwargs(spec)
    if spec.name in LR_SCHEDULERS_OWN:
        total = max(1, int(kwargs["frame"]) // max(1, frames_per_update))
        floor = float(kwargs.get("min_factor", 0.1)) if spec.name == "LinearToMin" else 0.0
        return torch.optim.lr_scheduler.LambdaLR(
            optim, lambda step: max(floor, 1.0 - step * (1.0 - floor) / total)
        )
    return _scheduler_classes()[spec.name](optim, **kwargs)
