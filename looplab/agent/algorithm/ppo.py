"""Proximal Policy Optimization (Schulman et al. 2017) with GAE, on a batch of vector-env rollouts.

Per train call: advantages by GAE over the rollout, then `training_epoch` epochs of shuffled
minibatches of the clipped surrogate objective, value loss and entropy bonus.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import AliasChoices, Field

from looplab.agent.algorithm.base import Algorithm, AlgorithmConfig
from looplab.agent.math import gae
from looplab.agent.net.base import Optimizer, build_net, init_tail
from looplab.agent.net.optim import make_loss
from looplab.agent.policy import out_dim
from looplab.agent.schedule import Schedule
from looplab.registry import ALGORITHMS
from looplab.spec.schema import PositiveCount, Prob, ScheduleSpec


class PPOConfig(AlgorithmConfig):
    lam: Prob | None = None
    num_step_returns: PositiveCount | None = None
    center_return: bool = False
    entropy_coef_spec: ScheduleSpec | None = None
    policy_loss_coef: float = 1.0
    val_loss_coef: float = 1.0
    normalize_v_targets: bool = False
    training_frequency: PositiveCount | None = None
    clip_eps_spec: ScheduleSpec
    minibatch_size: PositiveCount = 4
    time_horizon: PositiveCount
    training_epoch: PositiveCount
    clip_vloss: bool = Field(False, validation_alias=AliasChoices("clip_vloss", "clip_val_loss"))
    symlog: bool = False
    normalize_advantages: Literal["standardize", "percentile"] | bool = "standardize"


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class RunningStd:
    """Running variance of value targets (Welford over batches); std floored at 1."""

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


@ALGORITHMS.register("PPO")
class PPO(Algorithm):
    Config = PPOConfig
    memories = ("OnPolicyBatchReplay",)

    def init_nets(self) -> None:
        cfg, net_cfg, info = self.config, self.spec.net, self.env_info
        self.training_frequency = cfg.time_horizon
        self.gamma = cfg.gamma
        self.lam = cfg.lam if cfg.lam is not None else 0.95
        self.clip_eps = Schedule(cfg.clip_eps_spec)
        self.entropy_coef = Schedule(cfg.entropy_coef_spec, default=0.0)
        self.loss_fn = make_loss(net_cfg.loss_spec)
        self.shared = net_cfg.shared
        learned_std = net_cfg.log_std_init is not None and info.action_type in ("continuous", "multi_continuous")
        pi_dim = out_dim(self.pdtype, info.action_dim, self.nvec, learned_std)
        frames_per_update = cfg.time_horizon * info.num_envs
        if self.shared:
            self.net = build_net(net_cfg, info.state_shape, [pi_dim, 1]).to(self.device)
            init_tail(self.net.tails[0], net_cfg.actor_init_std)
            init_tail(self.net.tails[-1], net_cfg.critic_init_std)
            self.actor = self.net
            self.critic = None
        else:
            self.actor = build_net(net_cfg.for_role("actor"), info.state_shape, [pi_dim]).to(self.device)
            self.critic = build_net(net_cfg.for_role("critic"), info.state_shape, [1]).to(self.device)
        self.log_std = None
        if learned_std:
            self.actor.log_std = torch.nn.Parameter(
                torch.full((info.action_dim,), float(net_cfg.log_std_init), device=self.device))
            self.log_std = self.actor.log_std
        if self.shared:
            self.optimizers["net"] = Optimizer(list(self.net.parameters()), net_cfg, frames_per_update)
        else:
            self.optimizers["net"] = Optimizer(list(self.actor.parameters()), net_cfg.for_role("actor"),
                                               frames_per_update)
            self.optimizers["critic_net"] = Optimizer(list(self.critic.parameters()), net_cfg.for_role("critic"),
                                                      frames_per_update)
        self.v_norm = RunningStd() if cfg.normalize_v_targets else None
        self.entropy = float("nan")

    def nets(self) -> dict[str, torch.nn.Module]:
        return {"net": self.actor} if self.shared else {"net": self.actor, "critic_net": self.critic}

    # ---- acting -------------------------------------------------------------------------------
    def policy_out(self, x: torch.Tensor) -> torch.Tensor:
        out = self.actor(x)
        return out[0] if self.shared else out

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """V(s) in return units (undoing symlog / target normalization)."""
        v = (self.net(x)[-1] if self.shared else self.critic(x)).squeeze(-1)
        if self.config.symlog:
            v = symexp(v)
        if self.v_norm is not None:
            v = v * self.v_norm.std
        return v

    def act(self, state: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            pd = self.make_pd(self.policy_out(self.to_tensor(state)), self.log_std)
            action = pd.sample() if self.training else greedy(pd)
        return self.to_env_action(action)

    # ---- training -----------------------------------------------------------------------------
    def train(self) -> float:
        cfg = self.config
        batch = self.memory.sample()
        T, N = batch["rewards"].shape
        B = T * N
        states = self.to_tensor(batch["states"]).flatten(0, 1)
        next_states = self.to_tensor(batch["next_states"]).flatten(0, 1)
        actions = torch.as_tensor(batch["actions"], device=self.device).flatten(0, 1)
        with torch.no_grad():
            v = self.value(states)
            v_next = self.value(next_states)
            logp_old = self.make_pd(self.policy_out(states), self.log_std).log_prob(actions)
        done = np.maximum(batch["terminateds"], batch["truncateds"])
        adv = gae(batch["rewards"], v.view(T, N).cpu().numpy(), v_next.view(T, N).cpu().numpy(),
                  batch["terminateds"], done, self.gamma, self.lam)
        v_target_np = adv + v.view(T, N).cpu().numpy()
        if self.v_norm is not None:
            self.v_norm.update(v_target_np)
        advs = self.to_tensor(adv).flatten()
        v_targets = self.to_tensor(v_target_np).flatten()
        clip_eps = self.clip_eps.value(self.clock.frame)
        ent_coef = self.entropy_coef.value(self.clock.frame)
        mb = min(cfg.minibatch_size, B)
        losses, entropies = [], []
        for _ in range(cfg.training_epoch):
            perm = torch.randperm(B, device=self.device)
            for start in range(0, B, mb):
                idx = perm[start:start + mb]
                if len(idx) < 2:
                    continue
                pd = self.make_pd(self.policy_out(states[idx]), self.log_std)
                logp = pd.log_prob(actions[idx])
                ratio = torch.exp((logp - logp_old[idx]).clamp(-20.0, 20.0))
                a = advs[idx]
                if cfg.normalize_advantages:
                    a = (a - a.mean()) / (a.std() + 1e-8)
                policy_loss = -torch.min(ratio * a, ratio.clamp(1 - clip_eps, 1 + clip_eps) * a).mean()
                entropy = pd.entropy().mean()
                policy_loss = cfg.policy_loss_coef * policy_loss - ent_coef * entropy
                val_loss = cfg.val_loss_coef * self.value_loss(states[idx], v_targets[idx], v[idx], clip_eps)
                if self.shared:
                    loss = policy_loss + val_loss
                    self.step_optim("net", loss)
                else:
                    self.step_optim("net", policy_loss)
                    self.step_optim("critic_net", val_loss)
                    loss = policy_loss + val_loss
                losses.append(loss.detach())
                entropies.append(entropy.detach())
        self.step_lr_schedulers()
        self.entropy = float(torch.stack(entropies).mean()) if entropies else float("nan")
        return float(torch.stack(losses).mean()) if losses else float("nan")

    def value_loss(self, states: torch.Tensor, target: torch.Tensor, v_old: torch.Tensor,
                   clip_eps: float) -> torch.Tensor:
        """Loss of the value head in its own units (symlog / normalized targets), optionally clipped."""
        pred = (self.net(states)[-1] if self.shared else self.critic(states)).squeeze(-1)
        if self.v_norm is not None:
            target = (target / self.v_norm.std).clamp(-10.0, 10.0)
            v_old = v_old / self.v_norm.std
        if self.config.symlog:
            target, v_old = symlog(target), symlog(v_old)
        if not self.config.clip_vloss:
            return self.loss_fn(pred, target)
        clipped = v_old + (pred - v_old).clamp(-clip_eps, clip_eps)
        return 0.5 * torch.max((pred - target) ** 2, (clipped - target) ** 2).mean()

    def log_values(self) -> dict[str, float]:
        out = super().log_values()
        out["entropy"] = self.entropy
        out["entropy_coef"] = self.entropy_coef.value(self.clock.frame)
        out["clip_eps"] = self.clip_eps.value(self.clock.frame)
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"entropy": self.entropy,
                "v_norm": vars(self.v_norm).copy() if self.v_norm is not None else None}

    def load_extra_state(self, d: dict) -> None:
        self.entropy = d.get("entropy", float("nan"))
        if self.v_norm is not None and d.get("v_norm"):
            vars(self.v_norm).update(d["v_norm"])


def greedy(pd: torch.distributions.Distribution) -> torch.Tensor:
    """The most likely action: argmax for discrete, the mean/mode for continuous."""
    base = pd.base_dist if isinstance(pd, torch.distributions.Independent) else pd
    if isinstance(base, torch.distributions.Categorical):
        return base.logits.argmax(-1)
    if hasattr(pd, "cats"):
        return torch.stack([c.logits.argmax(-1) for c in pd.cats], -1)
    if isinstance(base, torch.distributions.Bernoulli):
        return (base.probs > 0.5).long()
    if isinstance(base, torch.distributions.Normal):
        return base.loc
    return pd.mean
