"""Base of all networks: the common net spec keys, activations, init, and the guarded training step."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import ValidationInfo, field_validator, model_validator
from torch import nn

from looplab.agent.net.optim import (
    check_loss_spec,
    check_lr_scheduler_spec,
    check_optim_spec,
    make_lr_scheduler,
    make_optim,
)
from looplab.errors import did_you_mean
from looplab.registry import Registry
from looplab.spec.schema import ClassSpec, Strict, to_count

ROLE_KEYS = ("optim_spec", "lr_scheduler_spec", "loss_spec", "clip_grad_val", "init_std", "hid_layers",
             "hid_layers_activation", "arc", "out_layer_activation")


def activation(name: str | None) -> nn.Module:
    """A torch.nn activation by case-insensitive name (relu, tanh, leakyrelu, ...)."""
    if name is None:
        return nn.Identity()
    table = {n.lower(): c for n, c in vars(nn.modules.activation).items() if isinstance(c, type)}
    table.update({"identity": nn.Identity, "linear": nn.Identity})
    cls = table.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown activation '{name}'{did_you_mean(name.lower(), table)}")
    return cls()


# nets, keyed by `agent.net.type`; every module in this folder is looked at on first use
NETS = Registry("net type", "agent.net.type", package="looplab.agent.net")


class NetConfig(Strict):
    """Keys common to every net type (SLM Lab's names)."""

    type: str  # the net (`looplab keys` lists them)
    shared: bool = False  # actor and critic share a body (two heads), or are separate nets
    hid_layers_activation: str = "relu"
    out_layer_activation: str | list[str | None] | None = None  # one per output head, or one for all
    init_fn: str | None = None  # a torch.nn.init function (orthogonal_, xavier_uniform_, ...); None: torch's
    # gain of init_fn (orthogonal_/xavier_*) on the output layers: "hidden" = hid_layers_activation's gain
    # (SLM Lab initialises every layer with it, e.g. 5/3 for tanh), or a number such as 1.0
    out_layer_init_gain: float | Literal["hidden"] = "hidden"
    init_std: float | None = None
    actor_init_std: float | None = None
    critic_init_std: float | None = None
    log_std_init: float | None = None
    layer_norm: bool = False
    batch_norm: bool = False
    clip_grad_val: float | None = None  # max gradient 2-norm per net; None: no clipping
    loss_spec: ClassSpec | None = None  # a torch.nn loss class and its arguments
    optim_spec: ClassSpec | None = None  # a torch.optim class and its arguments
    actor_optim_spec: ClassSpec | None = None
    critic_optim_spec: ClassSpec | None = None
    lr_scheduler_spec: ClassSpec | None = None
    actor_lr_scheduler_spec: ClassSpec | None = None
    critic_lr_scheduler_spec: ClassSpec | None = None
    actor_clip_grad_val: float | None = None
    critic_clip_grad_val: float | None = None
    actor_loss_spec: ClassSpec | None = None
    critic_loss_spec: ClassSpec | None = None
    use_same_optim: bool = False  # the critic takes the actor's optimizer and lr scheduler settings
    update_type: Literal["replace", "polyak"] | None = None  # how a target net follows the net
    # frames between target-net copies (`replace`); SLM Lab does not read it with `polyak`, so there any number
    # is accepted and left unused, as its spec files sometimes write one
    update_frequency: int | float | None = None
    polyak_coef: float | None = None  # target <- coef * net + (1 - coef) * target; 0: the target never moves
    gpu: bool | str | None = "auto"  # auto: CUDA when available; true: CUDA (CPU with a warning); false: CPU
    cuda_id: int | None = None

    @field_validator("hid_layers_activation")
    @classmethod
    def _act(cls, v: str) -> str:
        activation(v)
        return v

    @field_validator("init_fn")
    @classmethod
    def _init(cls, v: str | None) -> str | None:
        if v is not None:
            name = v if v.endswith("_") else v + "_"
            if not hasattr(nn.init, name):
                inits = [n for n in vars(nn.init) if n.endswith("_") and not n.startswith("_")]
                raise ValueError(f"unknown init_fn '{v}'{did_you_mean(name, inits)}")
        return v

    @field_validator("optim_spec", "actor_optim_spec", "critic_optim_spec")
    @classmethod
    def _optim(cls, v: ClassSpec | None) -> ClassSpec | None:
        if v is not None:
            check_optim_spec(v)
        return v

    @field_validator("loss_spec", "actor_loss_spec", "critic_loss_spec")
    @classmethod
    def _loss(cls, v: ClassSpec | None) -> ClassSpec | None:
        if v is not None:
            check_loss_spec(v)
        return v

    @field_validator("lr_scheduler_spec", "actor_lr_scheduler_spec", "critic_lr_scheduler_spec")
    @classmethod
    def _sched(cls, v: ClassSpec | None) -> ClassSpec | None:
        if v is not None:
            check_lr_scheduler_spec(v)
        return v

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu(cls, v: Any) -> Any:
        if v not in (None, True, False, "auto", "true", "false", "True", "False"):
            raise ValueError("must be auto, true or false")
        return v

    @field_validator("update_frequency", mode="before")
    @classmethod
    def _update_frequency(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None or info.data.get("update_type") == "polyak":
            return v
        n = to_count(v)
        if n <= 0:
            raise ValueError("must be greater than 0")
        return n

    @field_validator("polyak_coef")
    @classmethod
    def _polyak(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 <= v <= 1.0:
            raise ValueError("must be in [0, 1]")
        return v

    @field_validator("clip_grad_val", "actor_clip_grad_val", "critic_clip_grad_val")
    @classmethod
    def _clip_grad(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:  # a norm of at most 0 would zero (or, below 0, reverse) every gradient
            raise ValueError(f"the largest gradient norm must be greater than 0 (or null: no clipping), got {v}")
        return v

    @model_validator(mode="after")
    def _target(self) -> NetConfig:
        if self.update_type == "replace" and self.update_frequency is None:
            raise ValueError("update_type 'replace' needs update_frequency")
        if self.update_type == "polyak" and self.polyak_coef is None:
            self.polyak_coef = 0.0  # SLM Lab's default: the target net keeps its initial weights
        return self

    def for_role(self, role: str | None) -> NetConfig:
        """The config of the actor or critic of a non-shared net: `actor_X`/`critic_X` override X.

        `use_same_optim` gives the critic the actor's optimizer and lr scheduler settings.
        """
        if role is None:
            return self
        src = "actor" if (role == "critic" and self.use_same_optim) else role
        update: dict[str, Any] = {}
        for key in ROLE_KEYS:
            for prefix in (src, role) if key in ("optim_spec", "lr_scheduler_spec") else (role,):
                val = getattr(self, f"{prefix}_{key}", None)
                if val is not None:
                    update[key] = val
                    break
        return self.model_copy(update=update)


GAIN_INIT_FNS = (nn.init.orthogonal_, nn.init.xavier_uniform_, nn.init.xavier_normal_)


def activation_gain(act_name: str | None) -> float:
    """torch.nn.init.calculate_gain of an activation named as in a spec (`leakyrelu`, `Tanh` ...); 1 if it has none."""
    name = (act_name or "linear").lower()
    try:
        return nn.init.calculate_gain("leaky_relu" if name == "leakyrelu" else name)
    except ValueError:
        return 1.0


def init_params(module: nn.Module, init_fn: str | None, gain: float) -> None:
    """Initialise Linear/Conv weights with torch.nn.init.<init_fn> (with `gain` where it takes one), biases 0."""
    if init_fn is None:
        return
    fn = getattr(nn.init, init_fn if init_fn.endswith("_") else init_fn + "_")
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv1d)):
            if fn in GAIN_INIT_FNS:
                fn(m.weight, gain=gain)
            else:
                fn(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def out_layer_gain(config: NetConfig) -> float:
    """The init gain of the output layers under `out_layer_init_gain`."""
    gain = config.out_layer_init_gain
    return activation_gain(config.hid_layers_activation) if gain == "hidden" else float(gain)


def init_tail(layer: nn.Linear, std: float | None) -> None:
    """Orthogonal re-init of an output layer with gain `std` (CleanRL's 0.01 policy / 1.0 value)."""
    if std is not None:
        nn.init.orthogonal_(layer.weight, gain=std)
        nn.init.zeros_(layer.bias)


def make_tails(feat: int, out_dims: list[int], config: NetConfig) -> tuple[nn.ModuleList, nn.ModuleList]:
    """One linear tail per output on `feat` features, with its out_layer_activation (a name or one per tail)."""
    tails = nn.ModuleList(nn.Linear(feat, d) for d in out_dims)
    init_params(tails, config.init_fn, out_layer_gain(config))
    outs = config.out_layer_activation
    outs = outs if isinstance(outs, list) else [outs] * len(out_dims)
    if config.init_std is not None:
        for tail in tails:
            init_tail(tail, config.init_std)
    return tails, nn.ModuleList(activation(a) for a in outs)


def apply_tails(tails: nn.ModuleList, out_acts: nn.ModuleList, h: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
    """The tails' outputs on features `h`: a tensor for one tail, else a list."""
    outs = [act(tail(h)) for tail, act in zip(tails, out_acts, strict=True)]
    return outs[0] if len(outs) == 1 else outs


class Net(nn.Module):
    """A network body with one linear tail per output; forward returns a tensor or a list of tensors."""

    Config = NetConfig

    def __init__(self, config: NetConfig, in_shape: tuple[int, ...], out_dims: list[int]):
        super().__init__()
        self.config = config
        self.in_shape = in_shape
        self.out_dims = out_dims


def build_net(config: NetConfig, in_shape: tuple[int, ...], out_dims: list[int]) -> Net:
    return NETS.get(config.type)(config, in_shape, out_dims)


def resolve_device(gpu: Any) -> torch.device:
    """`gpu`: auto/None -> CUDA if available; true -> CUDA (CPU with a warning when absent); false -> CPU."""
    want = str(gpu).lower()
    if want in ("none", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if want == "true":
        if torch.cuda.is_available():
            return torch.device("cuda")
        import logging

        logging.getLogger("looplab").warning("gpu: true but CUDA is not available; using the CPU")
    return torch.device("cpu")


@torch.no_grad()
def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """dst <- src, parameters and buffers: what dst.load_state_dict(src.state_dict()) does, in one call."""
    torch._foreach_copy_([*dst.parameters(), *dst.buffers()], [*src.parameters(), *src.buffers()])


@torch.no_grad()
def polyak_update(online: nn.Module, target: nn.Module, coef: float) -> None:
    """target <- coef * online + (1 - coef) * target over parameters and float buffers (running BN
    statistics); integer buffers (BN's batch count) are copied."""
    t_floats = list(target.parameters()) + [b for b in target.buffers() if b.is_floating_point()]
    o_floats = list(online.parameters()) + [b for b in online.buffers() if b.is_floating_point()]
    torch._foreach_lerp_(t_floats, o_floats, coef)
    for b, tb in zip(online.buffers(), target.buffers(), strict=True):
        if not tb.is_floating_point():
            tb.copy_(b)


def clip_grad_norm(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_` on a list of same-device gradients, op for op (so bit for bit).

    The public function first groups tensors by device and dtype, which costs more than the clipping
    itself on RL-sized nets; a net's gradients here live on one device with one dtype.
    """
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total


def all_finite(grads: list[torch.Tensor]) -> bool:
    """No NaN or infinity in any gradient, one sync in the usual case.

    A NaN or an infinity makes a tensor's 2-norm non-finite, so finite 2-norms settle it. They are
    computed first because the CPU's max-abs kernel is ~30x slower than its 2-norm on a 256x256
    gradient. Only when a 2-norm is not finite (a NaN, an infinity, or finite values whose squares
    overflow) does the exact max-abs check decide.
    """
    if not grads:
        return True
    if bool(torch.stack(torch._foreach_norm(grads, 2.0)).isfinite().all()):
        return True
    return bool(torch.stack(torch._foreach_norm(grads, math.inf)).isfinite().all())


class Optimizer:
    """An optimizer with its lr scheduler, grad clipping and a guard against non-finite updates."""

    def __init__(self, params: list[nn.Parameter], config: NetConfig, frames_per_update: int,
                 clip_groups: list[list[nn.Parameter]] | None = None):
        self.params = [p for p in params if p.requires_grad]
        # nets whose gradients `clip_grad_val` bounds each on its own (twin critics under one optimizer, as
        # SLM Lab clips each net); None: all of `params` together
        self.clip_groups = [[p for p in g if p.requires_grad] for g in clip_groups] if clip_groups else None
        spec = config.optim_spec or ClassSpec(name="Adam", lr=1e-3)
        self.name = spec.name  # as the spec names it (SLM Lab's GlobalAdam shares its state under Hogwild)
        self.optim = make_optim(spec, self.params)
        self.lr_scheduler = make_lr_scheduler(config.lr_scheduler_spec, self.optim, frames_per_update)
        self.clip_grad_val = config.clip_grad_val
        self.nonfinite = 0
        self.fused: dict[tuple[int, ...], torch.optim.Optimizer] = {}  # see fused_step
        # Hogwild `synced`: steps the trial's global nets instead of this one (looplab.agent.net.hogwild)
        self.global_step: Callable[[Optimizer], None] | None = None

    def step(self, loss: torch.Tensor) -> bool:
        """One gradient step on `loss`; skipped (and counted) if the loss or a gradient is not finite."""
        return step_jointly([(self, loss)])[0]

    def zero_grad(self) -> None:
        for p in self.params:  # what optim.zero_grad(set_to_none=True) does, without its profiler hook
            p.grad = None

    def clip(self) -> bool:
        """Clip the gradients the last backward left; False (counted, gradients dropped) if one is not finite."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if self.clip_grad_val is not None and grads:
            groups = [grads] if self.clip_groups is None else [
                [p.grad for p in g if p.grad is not None] for g in self.clip_groups]
            norms = [clip_grad_norm(g, self.clip_grad_val) for g in groups if g]
            finite = math.isfinite(float(norms[0] if len(norms) == 1 else torch.stack(norms).sum()))
        else:
            finite = all_finite(grads)
        if not finite:
            self.zero_grad()
            self.nonfinite += 1
        return finite

    def step_scheduler(self) -> None:
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()

    @property
    def lr(self) -> float:
        return float(self.optim.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return {
            "optim": self.optim.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
            "nonfinite": self.nonfinite,
        }

    def load_state_dict(self, d: dict) -> None:
        self.optim.load_state_dict(d["optim"])  # replaces optim.state: a fused step looks it up at each step
        if self.lr_scheduler is not None and d.get("lr_scheduler") is not None:
            self.lr_scheduler.load_state_dict(d["lr_scheduler"])
        self.nonfinite = d.get("nonfinite", 0)


def step_jointly(steps: list[tuple[Optimizer, torch.Tensor]]) -> list[bool]:
    """Guarded gradient steps of optimizers over disjoint parameters, from ONE backward pass.

    Each loss must reach only its own optimizer's parameters (separate actor and critic nets, for
    instance): the backward of their sum then gives every parameter exactly the gradient its own loss
    gives it, for the cost of one pass. Each optimizer then clips its own gradients; a non-finite loss
    or gradient skips (and counts) only that optimizer's step. The others step, in one call where
    that is the same math (`fused_step`). Returns, per optimizer, whether its step was applied.
    """
    finite = [bool(torch.isfinite(loss)) for _, loss in steps]
    live = [loss for (_, loss), ok in zip(steps, finite, strict=True) if ok]
    for (opt, _), ok in zip(steps, finite, strict=True):
        if ok:
            opt.zero_grad()
        else:
            opt.nonfinite += 1
    if live:
        (live[0] if len(live) == 1 else sum(live[1:], live[0])).backward()
    applied = [ok and opt.clip() for (opt, _), ok in zip(steps, finite, strict=True)]
    stepping = [opt for (opt, _), ok in zip(steps, applied, strict=True) if ok]
    for opt in stepping:
        if opt.global_step is not None:
            opt.global_step(opt)
    stepping = [opt for opt in stepping if opt.global_step is None]
    if len(stepping) < 2 or not fused_step(stepping):
        for opt in stepping:
            opt.optim.step()
    return applied


FUSABLE = (torch.optim.Adam, torch.optim.AdamW)


class _OwnedState(dict):
    """The state of a fused step's optimizer: each parameter's entry is read from its own optimizer."""

    def __init__(self, owners: dict[torch.Tensor, torch.optim.Optimizer]):
        super().__init__()
        self.owners = owners

    def __getitem__(self, p: torch.Tensor) -> dict:
        return self.owners[p].state[p]

    def get(self, p: torch.Tensor, default: Any = None) -> Any:
        return self.owners[p].state.get(p, default)


def _settings(optim: torch.optim.Optimizer) -> dict | None:
    """The hyperparameters of a one-group optimizer (lr included, as its scheduler left it)."""
    groups = optim.param_groups
    return None if len(groups) != 1 else {k: v for k, v in groups[0].items() if k != "params"}


def _constructor_args(optim: torch.optim.Optimizer) -> dict:
    """The defaults of `optim` that its class's constructor takes (AdamW's defaults hold one it sets itself)."""
    accepted = inspect.signature(type(optim).__init__).parameters
    return {k: v for k, v in optim.defaults.items() if k in accepted}


def fused_step(opts: list[Optimizer]) -> bool:
    """Step several fused Adam/AdamW optimizers with equal settings in one call; False where they differ.

    Adam's update is elementwise per parameter, so one step over the union of the parameters is the
    same math as a step of each (one fused kernel instead of several, and one call's overhead). Moments
    and step counts stay in each optimizer, so state dicts, checkpoints and lr schedulers are untouched.
    """
    first = opts[0].optim
    settings = _settings(first)
    if type(first) not in FUSABLE or settings is None or not settings.get("fused"):
        return False
    if any(type(o.optim) is not type(first) or _settings(o.optim) != settings for o in opts[1:]):
        return False
    key = tuple(id(o) for o in opts)
    joint = opts[0].fused.get(key)
    if joint is None:
        joint = type(first)([p for o in opts for p in o.params], **_constructor_args(first))
        joint.state = _OwnedState({p: o.optim for o in opts for p in o.params})
        opts[0].fused[key] = joint
    joint.param_groups[0].update(settings)
    joint.step()
    for o in opts:  # what each one's own step() marks; lr schedulers check it to warn of a missing step
        o.optim._opt_called = True
    return True
