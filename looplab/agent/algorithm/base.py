"""Base of all algorithms: the act / update / train contract and what a checkpoint holds.

The session owns stepping, clocks and checkpoints; an algorithm owns acting, its memory, training and the
session's random streams (`self.rng`, `agent/rng.py`), built from the session seed on its device.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import ValidationInfo, field_validator

from looplab.agent.memory.base import memory_class
from looplab.agent.net.base import Optimizer, resolve_device, step_jointly
from looplab.agent.policy import DISTRIBUTIONS, POLICIES, make_pd, resolve_pdtype
from looplab.agent.rng import Rng
from looplab.agent.schedule import Schedule, ScheduleSpec
from looplab.errors import SpecError
from looplab.registry import Registry
from looplab.spec.schema import Prob, Spec, Strict

# algorithms, keyed by `agent.algorithm.name`; every module in this folder is looked at on first use
ALGORITHMS = Registry("algorithm", "agent.algorithm.name", package="looplab.agent.algorithm")


class AlgorithmConfig(Strict):
    """Keys every algorithm reads."""

    name: str  # the algorithm (`looplab keys` lists them)
    action_pdtype: str = "default"  # the action distribution; default: the first one the action space allows
    action_policy: str = "default"  # default (a draw from the distribution), random, epsilon_greedy, boltzmann
    explore_var_spec: ScheduleSpec | None = None  # epsilon (epsilon_greedy) or temperature (boltzmann)
    gamma: Prob = 0.99  # the discount

    @field_validator("action_pdtype")
    @classmethod
    def _pdtype(cls, v: str) -> str:
        return v if v == "default" else DISTRIBUTIONS.known(v)

    @field_validator("action_policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        return POLICIES.known(v)

    @field_validator("explore_var_spec")
    @classmethod
    def _explore_var(cls, spec: ScheduleSpec | None, info: ValidationInfo) -> ScheduleSpec | None:
        """epsilon is a probability; a Boltzmann temperature divides the Q-values, so it must stay above 0."""
        if spec is None:
            return spec
        policy = info.data.get("action_policy")
        values = [v for v in (spec.start_val, spec.end_val) if v is not None]
        if policy == "epsilon_greedy" and not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"epsilon_greedy's epsilon must be in [0, 1], got start_val {spec.start_val} and "
                             f"end_val {spec.end_val}")
        if policy == "boltzmann" and not all(v > 0.0 for v in values):
            raise ValueError(f"boltzmann's temperature must be greater than 0, got start_val {spec.start_val} and "
                             f"end_val {spec.end_val}")
        return spec


class Algorithm:
    """An RL algorithm: acts on a batch of states, stores transitions in its memory, trains when ready."""

    Config: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig
    # action types the algorithm can act in; None = any
    action_types: ClassVar[tuple[str, ...] | None] = None
    # memory names the algorithm works with; None = any
    memories: ClassVar[tuple[str, ...] | None] = None
    needs_net: ClassVar[bool] = True

    def __init__(self, spec: Spec, env_info: Any, clock: Any, seed: int):
        self.spec = spec
        self.config = spec.algorithm
        self.env_info = env_info
        self.clock = clock
        self.device = resolve_device(spec.net.gpu if spec.net is not None else False)
        self.rng = Rng(seed, self.device)
        self.training = True  # False in enjoy: no training, no exploration
        self.loss = float("nan")
        # value-based and critic algorithms: mean Q(s, a) of each batch of the current training call, and
        # of the last call (their `q_mean` column: a drift past r_max / (1 - gamma) is divergence)
        self.q_batches: list[torch.Tensor] = []
        self.q_mean = float("nan")
        self.explore_var = Schedule(self.config.explore_var_spec, default=float("nan"))
        self.pdtype = resolve_pdtype(self.config.action_pdtype, env_info.action_type)
        self.nvec = list(getattr(env_info.action_space, "nvec", [])) or None
        self.optimizers: dict[str, Optimizer] = {}
        # torch.nn's initializers draw from the global CPU generator (nets are built on the CPU): seed it for
        # the build alone
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.rng.init_seed)
            self.init_nets()
        self.memory = memory_class(spec.memory.name, env_info)(spec.memory, env_info, self, self.rng.replay)

    # ---- the contract -------------------------------------------------------------------------
    @classmethod
    def check_spec(cls, spec: Spec, env_info: Any) -> None:
        """Reject combinations that cannot work, before anything runs."""
        if cls.needs_net and spec.net is None:
            raise SpecError("required key is missing", path="agent.net")
        if cls.memories is not None and spec.memory.name not in cls.memories:
            raise SpecError(f"{spec.algorithm.name} needs memory {' or '.join(cls.memories)}, got '{spec.memory.name}'",
                            path="agent.memory.name")
        if spec.meta.distributed and not cls.needs_net:
            raise SpecError(f"{spec.algorithm.name} has no nets to train, so Hogwild cannot share any; set it to "
                            "false", path="meta.distributed")
        if spec.meta.distributed and str(spec.net.gpu).lower() == "true":
            raise SpecError("Hogwild trains nets in shared CPU memory; set agent.net.gpu to false or auto",
                            path="meta.distributed")
        if env_info is None:
            return
        if cls.action_types is not None and env_info.action_type not in cls.action_types:
            raise SpecError(f"{spec.algorithm.name} cannot act in a {env_info.action_type} action space "
                            f"({env_info.name}); it supports {', '.join(cls.action_types)}", path="agent.algorithm.name")
        try:
            resolve_pdtype(spec.algorithm.action_pdtype, env_info.action_type)
        except ValueError as e:
            raise SpecError(str(e), path="agent.algorithm.action_pdtype") from None
        if spec.algorithm.action_policy in ("epsilon_greedy", "boltzmann") and env_info.action_type != "discrete":
            raise SpecError(f"action_policy '{spec.algorithm.action_policy}' needs a discrete action space",
                            path="agent.algorithm.action_policy")

    def init_nets(self) -> None:
        """Build nets and optimizers (register optimizers in self.optimizers)."""

    def act(self, state: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update(self, state: np.ndarray, action: np.ndarray, reward: np.ndarray, next_state: np.ndarray,
               terminated: np.ndarray, truncated: np.ndarray) -> None:
        """Store a vector step; train when the memory says so."""
        self.memory.add(state, action, reward, next_state, terminated, truncated)
        if self.training and self.memory.ready:
            self.loss = self.train()

    def train(self) -> float:
        raise NotImplementedError

    def end_q_batches(self) -> None:
        """At the end of a training call: the mean Q(s, a) of its batches, one value for the log."""
        if self.q_batches:
            self.q_mean = float(torch.stack(self.q_batches).mean())
            self.q_batches = []

    # ---- helpers ------------------------------------------------------------------------------
    def to_tensor(self, x: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if getattr(x, "dtype", None) == np.uint8 and getattr(self.env_info, "scale_obs", False):
            # env key scale_obs: images stay uint8 in env and memory, scaled to [0, 1] for the net
            return torch.as_tensor(x, device=self.device).to(dtype) / 255.0
        return torch.as_tensor(x, dtype=dtype, device=self.device)

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        a = action.cpu().numpy()
        if self.env_info.action_type in ("continuous", "multi_continuous"):
            a = np.clip(a, -1.0, 1.0).reshape(-1, *self.env_info.action_space.shape)
        return a

    def make_pd(self, out: torch.Tensor, log_std: torch.Tensor | None = None):
        return make_pd(self.pdtype, out, log_std=log_std, nvec=self.nvec)

    def step_optim(self, name: str, loss: torch.Tensor) -> bool:
        """One guarded gradient step of optimizer `name`; ticks the clock's opt_step when applied."""
        return self.step_optims({name: loss})[0]

    def step_optims(self, losses: dict[str, torch.Tensor]) -> list[bool]:
        """Guarded steps of several optimizers over disjoint parameters from one backward pass (see
        `step_jointly`); each applied step ticks the clock's opt_step."""
        applied = step_jointly([(self.optimizers[name], loss) for name, loss in losses.items()])
        self.clock.opt_step += sum(applied)
        return applied

    def step_lr_schedulers(self) -> None:
        for opt in self.optimizers.values():
            opt.step_scheduler()

    @property
    def nonfinite(self) -> int:
        """Updates skipped because a loss or gradient was not finite."""
        return sum(o.nonfinite for o in self.optimizers.values())

    def log_values(self) -> dict[str, float]:
        """Extra session dataframe columns (lr, entropy, explore_var ...) at a log checkpoint."""
        lrs = [o.lr for o in self.optimizers.values()]
        out = {"lr": float(np.mean(lrs)) if lrs else float("nan")}
        if self.config.explore_var_spec is not None:
            out["explore_var"] = self.explore_var.value(self.clock.frame)
        return out

    def nets(self) -> dict[str, torch.nn.Module]:
        """Named modules to checkpoint (SLM Lab names: net, critic_net, target_net, q1_net ...)."""
        return {}

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, d: dict) -> None:
        pass

    def state_dict(self, memory_rows: bool = True) -> dict:
        """Everything to continue training; `memory_rows=False` leaves out an incremental memory's rows."""
        return {
            "nets": {k: v.state_dict() for k, v in self.nets().items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "memory": self.memory.state_dict(rows=memory_rows) if self.memory.incremental else self.memory.state_dict(),
            "loss": self.loss,
            "extra": self.extra_state(),
            "rng": self.rng.state_dict(),
        }

    def load_state_dict(self, d: dict, weights_only: bool = False) -> None:
        for k, net in self.nets().items():
            net.load_state_dict(d["nets"][k])
        if weights_only:
            return
        for k, opt in self.optimizers.items():
            opt.load_state_dict(d["optimizers"][k])
        self.memory.load_state_dict(d["memory"])
        self.loss = d.get("loss", float("nan"))
        self.load_extra_state(d.get("extra", {}))
        self.rng.load_state_dict(d["rng"])


def finite_or_nan(x: float) -> float:
    return x if math.isfinite(x) else float("nan")
