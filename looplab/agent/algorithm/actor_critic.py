"""Advantage actor-critic (A2C, Mnih et al. 2016) on batches of vector-env steps.

Advantages: GAE(gamma, lam) when `lam` is set; else n-step returns when `num_step_returns` is set
(training then happens every n steps); else discounted returns bootstrapped from V at the batch end
and at truncations, minus V. Policy loss as REINFORCE; value loss `val_loss_coef * loss_fn(V, target)`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from looplab.agent.algorithm.base import ALGORITHMS
from looplab.agent.algorithm.reinforce import PolicyGradientConfig, Reinforce, reset_points
from looplab.agent.math import discounted_returns, gae, nstep_returns
from looplab.agent.net.optim import make_loss
from looplab.agent.schedule import Schedule
from looplab.spec.schema import PositiveCount, Prob


class ActorCriticConfig(PolicyGradientConfig):
    lam: Prob | None = None  # GAE lambda; None: n-step returns (num_step_returns)
    num_step_returns: PositiveCount | None = None  # n of the n-step returns when lam is None
    val_loss_coef: float = 1.0  # weight of the value loss
    normalize_v_targets: bool = False  # value targets scaled by their running std (normalize_v_targets_mode)
    # `loss`: the critic predicts returns and the value loss compares prediction and target each divided
    # by the targets' running std (SLM Lab's); `output`: the critic predicts returns in units of that std.
    normalize_v_targets_mode: Literal["loss", "output"] = "loss"


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class RunningStd:
    """Running variance of value targets (Chan's merge of batch moments); std floored at 1."""

    def __init__(self) -> None:
        self.count, self.mean, self.var = 1e-4, 0.0, 1.0

    def update(self, x: np.ndarray) -> None:
        b_mean, b_var, b_n = float(x.mean()), float(x.var()), x.size
        delta, tot = b_mean - self.mean, self.count + b_n
        self.mean += delta * b_n / tot
        self.var = (self.var * self.count + b_var * b_n + delta**2 * self.count * b_n / tot) / tot
        self.count = tot

    @property
    def std(self) -> float:
        return max(1.0, float(np.sqrt(self.var)))


def scale_by(x: torch.Tensor, std: float | torch.Tensor, clip: float = 10.0) -> torch.Tensor:
    """x / std, clamped to ±clip: value targets in units of their running std."""
    return (x / std).clamp(-clip, clip)


@ALGORITHMS.register("ActorCritic")
class ActorCritic(Reinforce):
    Config = ActorCriticConfig
    with_critic = True
    use_symlog = False
    clip_vloss = False

    def init_nets(self) -> None:
        cfg = self.config
        if self.__dict__.get("training_frequency") is None:
            self.training_frequency = cfg.num_step_returns if cfg.lam is None and cfg.num_step_returns else (
                cfg.training_frequency or 1)
        self.gamma = cfg.gamma
        self.entropy_coef = Schedule(cfg.entropy_coef_spec, default=0.0)
        self.entropy = float("nan")
        self.loss_fn = make_loss(self.spec.net.loss_spec)
        self.build_nets()
        self.v_norm = RunningStd() if cfg.normalize_v_targets else None
        self.v_scaled_output = self.v_norm is not None and cfg.normalize_v_targets_mode == "output"

    # ---- values -------------------------------------------------------------------------------
    def value_out(self, x: torch.Tensor) -> torch.Tensor:
        """The value head's raw output (in symlog / normalized units)."""
        return (self.net(x)[-1] if self.critic is None else self.critic(x)).squeeze(-1)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """V(s) in return units."""
        v = self.value_out(x)
        if self.v_scaled_output:
            v = v * self.v_norm.std
        if self.use_symlog:
            v = symexp(v)
        return v

    def value_loss(self, states: torch.Tensor, target: torch.Tensor, v_old: torch.Tensor | None = None,
                   clip_eps: float = 0.0) -> torch.Tensor:
        """Loss of the value head, optionally clipped around `v_old` (PPO).

        Symlog (PPO's `symlog`) compresses prediction, target and `v_old` first. With
        `normalize_v_targets`, mode `loss` then updates the targets' running std with this batch and
        divides prediction, target and `v_old` by it, clamped to ±10; mode `output` divides only target
        and `v_old`, the head already being in those units (its statistics follow each rollout)."""
        return self.value_loss_of(self.value_out(states), target, v_old, clip_eps, self.update_v_norm(target))

    def update_v_norm(self, target: torch.Tensor) -> float | None:
        """The std the value loss divides by (None without `normalize_v_targets`), first updated with
        this batch's targets in mode `loss`."""
        if self.v_norm is None:
            return None
        if not self.v_scaled_output:
            self.v_norm.update((symlog(target) if self.use_symlog else target).detach().cpu().numpy())
        return self.v_norm.std

    def value_loss_of(self, pred: torch.Tensor, target: torch.Tensor, v_old: torch.Tensor | None,
                      clip_eps: float | torch.Tensor, std: float | torch.Tensor | None) -> torch.Tensor:
        """The value loss of the head's output `pred` (`value_loss`), the targets' std given: tensor math
        only, so that it compiles into one graph with the forward (PPO's `compile`)."""
        if self.use_symlog:
            target = symlog(target)
            v_old = None if v_old is None else symlog(v_old)
        if std is not None:
            if not self.v_scaled_output:
                pred = scale_by(pred, std)
            target = scale_by(target, std)
            v_old = None if v_old is None else v_old / std
        if not self.clip_vloss or v_old is None:
            return self.loss_fn(pred, target)
        clipped = v_old + (pred - v_old).clamp(-clip_eps, clip_eps)
        return 0.5 * torch.max((pred - target) ** 2, (clipped - target) ** 2).mean()

    def advantages(self, batch: dict[str, np.ndarray], v: np.ndarray, v_next: np.ndarray) -> np.ndarray:
        """Advantages [T, N] by the configured estimator; value targets are advantages + V."""
        cfg = self.config
        term = batch["terminateds"]
        done = reset_points(batch, cfg.returns_reset_on)
        if cfg.lam is not None:
            return gae(batch["rewards"], v, v_next, term, done, self.gamma, cfg.lam)
        if cfg.num_step_returns is not None:
            rets = nstep_returns(batch["rewards"], term, done, v_next, self.gamma, cfg.num_step_returns)
        else:
            rets = discounted_returns(batch["rewards"], term, done, self.gamma, next_values=v_next)
        return rets - v

    def estimate(self, batch: dict[str, np.ndarray], states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                     torch.Tensor]:
        """(V(s), advantages, value targets), flat [T*N]; updates the target normalizer."""
        T, N = batch["rewards"].shape
        with torch.no_grad():
            v = self.value(states)
            v_next = self.value(self.to_tensor(batch["next_states"]).flatten(0, 1))
        v_np = v.view(T, N).cpu().numpy()
        adv = self.advantages(batch, v_np, v_next.view(T, N).cpu().numpy())
        v_target = adv + v_np
        if self.v_scaled_output:
            self.v_norm.update(symlog(torch.from_numpy(v_target)).numpy() if self.use_symlog else v_target)
        return v, self.to_tensor(adv).flatten(), self.to_tensor(v_target).flatten()

    def train(self) -> float:
        batch = self.memory.sample()
        states, actions = self.flat_batch(batch)
        _, advs, v_targets = self.estimate(batch, states)
        policy_loss = self.policy_loss(states, actions, advs)
        val_loss = self.config.val_loss_coef * self.value_loss(states, v_targets)
        self.step_actor_critic(policy_loss, val_loss)
        self.step_lr_schedulers()
        return float((policy_loss + val_loss).detach())

    def step_actor_critic(self, policy_loss: torch.Tensor, val_loss: torch.Tensor) -> None:
        if self.critic is None:
            self.step_optim("net", policy_loss + val_loss)
        else:  # separate nets: the policy loss reaches only the actor, the value loss only the critic
            self.step_optims({"net": policy_loss, "critic_net": val_loss})

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "v_norm": vars(self.v_norm).copy() if self.v_norm is not None else None}

    def load_extra_state(self, d: dict) -> None:
        super().load_extra_state(d)
        if self.v_norm is not None and d.get("v_norm"):
            vars(self.v_norm).update(d["v_norm"])

