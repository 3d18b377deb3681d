"""Hogwild (SLM Lab's `meta.distributed`, its A3C and DPPO): the sessions of a trial train one set of nets.

The trial builds the global nets once and puts their tensors in shared memory; every session process
attaches its algorithm to them:

- `shared`: the session's trainable nets *are* the global ones (their parameters and buffers point at
  the shared storage) and its optimizer steps them in place, without locks.
- `synced`: the session keeps nets of its own; after each backward its gradients go to the global
  nets, the global optimizer steps them, and the session copies the global weights back.

With SLM Lab's `GlobalAdam` / `GlobalRMSprop` the optimizer's state (moments, step counts) lives in
shared memory too, one state for all sessions; any other optimizer keeps a state per session. Only
nets that an optimizer trains are global (target nets stay each session's own, as in SLM Lab), and an
optimizer over parameters outside the nets (SAC's temperature) stays local.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from looplab.agent.net.base import Optimizer, _constructor_args

MODES = ("shared", "synced")
GLOBAL_OPTIMS = ("GlobalAdam", "GlobalRMSprop")


@dataclass
class GlobalNets:
    """The tensors of a trial's global nets, in shared memory; picklable to session processes."""

    mode: str
    params: dict[str, list[torch.Tensor]]  # net name -> its parameters
    buffers: dict[str, list[torch.Tensor]]  # net name -> its buffers (BatchNorm statistics ...)
    optim_states: dict[str, list[dict]] = field(default_factory=dict)  # optimizer name -> state per parameter


def make_global_nets(algorithm: Any, mode: str) -> GlobalNets:
    """Move the trainable nets of `algorithm` (built once by the trial) into shared memory."""
    if mode not in MODES:
        raise ValueError(f"unknown distributed mode '{mode}'; use one of {', '.join(MODES)}")
    trained = {id(p) for opt in algorithm.optimizers.values() for p in opt.params}
    params: dict[str, list[torch.Tensor]] = {}
    buffers: dict[str, list[torch.Tensor]] = {}
    for name, net in algorithm.nets().items():
        if not any(id(p) in trained for p in net.parameters()):
            continue  # a target net: each session keeps its own
        net.cpu().share_memory()
        params[name] = [p.detach() for p in net.parameters()]
        buffers[name] = [b.detach() for b in net.buffers()]
    shared = {id(p) for net_name in params for p in algorithm.nets()[net_name].parameters()}
    states = {name: _shared_state(opt.optim) for name, opt in algorithm.optimizers.items()
              if opt.name in GLOBAL_OPTIMS and all(id(p) in shared for p in opt.params)}
    return GlobalNets(mode, params, buffers, states)


def _shared_state(optim: torch.optim.Optimizer) -> list[dict]:
    """A fresh state for each parameter of `optim`, in shared memory.

    Its layout (which tensors, their dtypes) is what the optimizer's own first step makes: one step of a
    twin optimizer over zero copies of the parameters with zero gradients, then every tensor zeroed
    (a zero step count makes the next step the first).
    """
    twins = [torch.nn.Parameter(torch.zeros_like(p)) for g in optim.param_groups for p in g["params"]]
    for t in twins:
        t.grad = torch.zeros_like(t)
    twin = type(optim)(twins, **_constructor_args(optim))
    twin.step()
    states = []
    for t in twins:
        state = dict(twin.state[t])
        for value in state.values():
            if isinstance(value, torch.Tensor):
                value.zero_()
                value.share_memory_()
        states.append(state)
    return states


def attach(algorithm: Any, nets: GlobalNets) -> None:
    """Make a session's `algorithm` train the global nets (see the module docstring)."""
    own = algorithm.nets()
    to_global: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for name, tensors in nets.params.items():
            local = list(own[name].parameters())
            for p, g in zip(local, tensors, strict=True):
                to_global[id(p)] = g
                if nets.mode == "shared":
                    p.data = g
                else:
                    p.copy_(g)  # a synced session starts from the global weights
            if nets.mode == "shared":
                for b, g in zip(own[name].buffers(), nets.buffers[name], strict=True):
                    b.data = g
    for name, opt in algorithm.optimizers.items():
        if not all(id(p) in to_global for p in opt.params):
            continue  # an optimizer of the session's own (e.g. SAC's temperature)
        state = nets.optim_states.get(name)
        if nets.mode == "shared":
            if state is not None:
                for p, st in zip(opt.params, state, strict=True):
                    opt.optim.state[p] = st
            continue
        glob = [to_global[id(p)] for p in opt.params]
        optim = type(opt.optim)(glob, **_constructor_args(opt.optim))
        if state is not None:
            for g, st in zip(glob, state, strict=True):
                optim.state[g] = st
        opt.global_step = SyncedStep(opt.params, glob, optim)


class SyncedStep:
    """`synced`: push a session's gradients to the global nets, step them, pull their weights back."""

    def __init__(self, local: list[torch.Tensor], glob: list[torch.Tensor], optim: torch.optim.Optimizer):
        self.local, self.glob, self.optim = local, glob, optim

    def __call__(self, opt: Optimizer) -> None:
        for p, g in zip(self.local, self.glob, strict=True):
            g.grad = p.grad
        for mine, theirs in zip(opt.optim.param_groups, self.optim.param_groups, strict=True):
            theirs["lr"] = mine["lr"]  # the session's lr scheduler sets the step size
        self.optim.step()
        for g in self.glob:
            g.grad = None
        with torch.no_grad():
            torch._foreach_copy_(self.local, self.glob)
        opt.optim._opt_called = True  # the session's own optimizer stands for this step (lr scheduler check)
