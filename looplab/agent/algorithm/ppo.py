"""Proximal Policy Optimization (Schulman et al. 2017) with GAE, on a batch of vector-env rollouts.

Per train call: advantages by GAE over the rollout, then `training_epoch` epochs of shuffled
minibatches of the clipped surrogate objective, value loss and entropy bonus. Each minibatch's
advantages are standardized (`normalize_advantages: standardize`, the default), divided by the spread of
their 5th-95th percentiles tracked as moving averages (`percentile`, DreamerV3's rule as SLM Lab has it),
or left as they are (`false`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import AliasChoices, Field, field_validator

from looplab.agent.algorithm.actor_critic import (  # noqa: F401  (RunningStd, symlog, symexp: public here too)
    ActorCritic,
    ActorCriticConfig,
    RunningStd,
    symexp,
    symlog,
)
from looplab.agent.algorithm.base import ALGORITHMS
from looplab.agent.algorithm.reinforce import reset_points
from looplab.agent.math import gae
from looplab.agent.policy import entropy, greedy, sample, sample_logits
from looplab.agent.schedule import Schedule, ScheduleSpec
from looplab.errors import SpecError
from looplab.spec.schema import PositiveCount, Spec


class PPOConfig(ActorCriticConfig):
    clip_eps_spec: ScheduleSpec  # the clip range of the surrogate objective
    minibatch_size: PositiveCount = 4  # transitions per minibatch
    time_horizon: PositiveCount  # vector steps per rollout
    training_epoch: PositiveCount  # passes over each rollout
    clip_vloss: bool = Field(False, validation_alias=AliasChoices("clip_vloss", "clip_val_loss"))
    symlog: bool = False
    # per minibatch: standardize; percentile: divided by the moving 5th-95th percentile spread; false: as they are
    normalize_advantages: Literal["standardize", "percentile"] | bool = "standardize"
    # torch.compile (inductor) of the minibatch step's forward, losses and backward: one fused graph
    compile: bool = False

    @field_validator("clip_eps_spec")
    @classmethod
    def _clip_eps(cls, v: ScheduleSpec) -> ScheduleSpec:
        if v.start_val < 0 or (v.end_val is not None and v.end_val < 0):
            raise ValueError(f"the clip range must be >= 0, got start_val {v.start_val} and end_val {v.end_val}")
        return v


def clipped_surrogate_loss(ratio: torch.Tensor, advantages: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """-E[min(r A, clip(r, 1 - eps, 1 + eps) A)]: the clipped objective, as a loss to minimize."""
    return -torch.min(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages).mean()


class PercentileNormalizer:
    """Advantages divided by max(1, p95 - p5), the 5th and 95th percentiles tracked as moving averages
    (decay 0.99, from 0), updated with each minibatch before it is normalized (SLM Lab's PercentileNormalizer)."""

    def __init__(self, decay: float = 0.99) -> None:
        self.perc5, self.perc95, self.decay = 0.0, 0.0, decay

    def update(self, values: torch.Tensor) -> None:
        p5, p95 = torch.quantile(values, 0.05).item(), torch.quantile(values, 0.95).item()
        self.perc5 = self.decay * self.perc5 + (1 - self.decay) * p5
        self.perc95 = self.decay * self.perc95 + (1 - self.decay) * p95

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        return values / max(1.0, self.perc95 - self.perc5)


@ALGORITHMS.register("PPO")
class PPO(ActorCritic):
    Config = PPOConfig
    memories = ("OnPolicyBatchReplay",)

    @classmethod
    def check_spec(cls, spec: Spec, env_info: Any) -> None:
        super().check_spec(spec, env_info)
        if spec.algorithm.compile and spec.algorithm.use_sde:
            raise SpecError("cannot be combined with use_sde (its noise features are read from a forward hook)",
                            path="agent.algorithm.compile")

    def init_nets(self) -> None:
        cfg = self.config
        self.training_frequency = cfg.time_horizon
        self.use_symlog = cfg.symlog
        self.clip_vloss = cfg.clip_vloss
        self.lam = cfg.lam if cfg.lam is not None else 0.95
        self.clip_eps = Schedule(cfg.clip_eps_spec)
        self.percentile = PercentileNormalizer() if cfg.normalize_advantages == "percentile" else None
        super().init_nets()
        self.minibatch = self.minibatch_losses
        if cfg.compile:
            import torch._dynamo

            # each new minibatch shape or loss setting (a search's trials in one worker) is a variant of its
            # own; past torch's default of 8 it would fall back to eager and round differently
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            self.minibatch = torch.compile(self.minibatch_losses, dynamic=False)

    def advantages(self, batch: dict[str, np.ndarray], v: np.ndarray, v_next: np.ndarray) -> np.ndarray:
        return gae(batch["rewards"], v, v_next, batch["terminateds"], reset_points(batch, self.config.returns_reset_on), self.gamma, self.lam)

    def act(self, state: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.policy_out(self.to_tensor(state))
            if self.pdtype == "Categorical":  # without building the distribution: the same draw, faster
                action = sample_logits(out, self.rng.act) if self.training else out.argmax(-1)
            elif self.sde is not None and self.training:
                action = self.sde_action(out)
            else:
                pd = self.make_pd(out, self.log_std)
                action = sample(pd, self.rng.act) if self.training else greedy(pd)
        return self.to_env_action(action)

    # ---- training -----------------------------------------------------------------------------
    def train(self) -> float:
        cfg = self.config
        batch = self.memory.sample()
        T, N = batch["rewards"].shape
        B = T * N
        states, actions = self.flat_batch(batch)
        v, advs, v_targets = self.estimate(batch, states)
        with torch.no_grad():
            logp_old = self.make_pd(self.policy_out(states), self.log_std).log_prob(actions)
        clip_eps = self.clip_eps.value(self.clock.frame)
        ent_coef = self.entropy_coef.value(self.clock.frame)
        as_input = (lambda x: torch.tensor(x, device=self.device)) if cfg.compile else (lambda x: x)
        mb = min(cfg.minibatch_size, B)
        losses, entropies = [], []
        for _ in range(cfg.training_epoch):
            perm = torch.randperm(B, generator=self.rng.train, device=self.device)
            for start in range(0, B, mb):
                idx = perm[start:start + mb]
                if len(idx) < 2:
                    continue
                a = advs[idx]
                if self.percentile is not None:
                    self.percentile.update(a)
                    a = self.percentile.normalize(a)
                std = self.update_v_norm(v_targets[idx])
                policy_loss, val_loss, ent = self.minibatch(
                    states[idx], actions[idx], logp_old[idx], a, v_targets[idx], v[idx], as_input(clip_eps),
                    as_input(ent_coef), None if std is None else as_input(std))
                self.step_actor_critic(policy_loss, val_loss)
                loss = policy_loss + val_loss
                losses.append(loss.detach())
                entropies.append(ent.detach())
        self.step_lr_schedulers()
        self.entropy = float(torch.stack(entropies).mean()) if entropies else float("nan")
        return float(torch.stack(losses).mean()) if losses else float("nan")

    def minibatch_losses(self, states: torch.Tensor, actions: torch.Tensor, logp_old: torch.Tensor,
                         advs: torch.Tensor, v_targets: torch.Tensor, v: torch.Tensor, clip_eps: float | torch.Tensor,
                         ent_coef: float | torch.Tensor, std: float | torch.Tensor | None,
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(policy loss, value loss, entropy) of one minibatch: tensor math only, what `compile` compiles.
        `advs` arrive percentile-normalized when that is the rule; `std` is the value targets' (or None)."""
        cfg = self.config
        pd = self.make_pd(self.policy_out(states), self.log_std)
        logp = pd.log_prob(actions)
        ratio = torch.exp((logp - logp_old).clamp(-20.0, 20.0))
        if self.percentile is None and cfg.normalize_advantages:
            advs = (advs - advs.mean()) / (advs.std() + 1e-8)
        policy_loss = clipped_surrogate_loss(ratio, advs, clip_eps)
        ent = entropy(pd, self.rng.train).mean()
        policy_loss = cfg.policy_loss_coef * policy_loss - ent_coef * ent
        val_loss = cfg.val_loss_coef * self.value_loss_of(self.value_out(states), v_targets, v, clip_eps, std)
        return policy_loss, val_loss, ent

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "percentile": vars(self.percentile).copy() if self.percentile else None}

    def load_extra_state(self, d: dict) -> None:
        super().load_extra_state(d)
        if self.percentile is not None and d.get("percentile"):
            vars(self.percentile).update(d["percentile"])

    def log_values(self) -> dict[str, float]:
        out = super().log_values()
        out["clip_eps"] = self.clip_eps.value(self.clock.frame)
        return out
