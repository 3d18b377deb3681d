"""Soft Actor-Critic (Haarnoja et al. 2018) for continuous and discrete actions.

Continuous: a tanh-squashed Gaussian policy with the change-of-variables log-prob correction; the env
acts in [-1, 1] (Box actions are rescaled by the env). Discrete (Christodoulou 2019): the soft value
and the policy loss are exact expectations over actions; as in SLM Lab, they read the mean of the twin
critics (SD-SAC, Zhou et al. 2022) where continuous actions read their minimum (`twin_q`), and the policy
loss reuses the critic loss's Q(s, .) (`discrete_policy_q`). Twin Q nets with polyak-averaged targets,
automatic entropy tuning (alpha learned in log space and clamped), delayed policy updates; uniform
random actions before `training_start_step`.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import numpy as np
import torch
from pydantic import field_validator, model_validator

from looplab.agent.algorithm.actor_critic import symlog
from looplab.agent.algorithm.base import ALGORITHMS, Algorithm, AlgorithmConfig
from looplab.agent.net.base import NetConfig, Optimizer, build_net, copy_weights, polyak_update
from looplab.agent.net.optim import make_loss
from looplab.agent.policy import LOG_SCALE_MAX, LOG_SCALE_MIN, random_action, sample_logits, tanh_log_det
from looplab.errors import SpecError
from looplab.spec.schema import ClassSpec, NonNegCount, PositiveCount, Spec, Strict


class EntropyAnneal(Strict):
    """Discrete target entropy = ratio * ln|A|, the ratio going linearly from start to end over `frames`."""

    start_ratio: float = 0.6  # of ln|A|, at frame 0
    end_ratio: float | None = None  # None: the ratio stays at start_ratio
    frames: NonNegCount = 0  # env frames over which the ratio moves from start_ratio to end_ratio


class SACConfig(AlgorithmConfig):
    training_frequency: PositiveCount = 1  # transitions (frames) stored between training calls
    training_iter: PositiveCount | None = None  # None: num_envs (one update per transition)
    # transitions stored before training starts (random actions until then); None: max(1000, batch_size)
    training_start_step: NonNegCount | None = None
    policy_delay: PositiveCount = 1  # critic updates per actor, alpha and target-net update
    # discrete actions (SD-SAC, Zhou et al. 2022): beta/2 (H_ema - H)^2 added to the policy loss, H the batch's
    # mean policy entropy and H_ema its moving average (0.99 per update) before this update; 0: none
    entropy_penalty_coef: float = 0.0
    # how the twin critics combine in the soft value and the policy loss. auto (SLM Lab's): their mean for
    # discrete actions (SD-SAC), their minimum for continuous ones
    twin_q: Literal["auto", "min", "mean"] = "auto"
    # discrete actions: the Q(s, .) the policy loss reads. critic_forward (SLM Lab's): the critics' outputs
    # from the critic loss's forward on the same batch (before that update's step, detached; for CrossQ in
    # train mode); fresh: a forward after the critic step (for CrossQ in eval mode)
    discrete_policy_q: Literal["critic_forward", "fresh"] = "critic_forward"
    symlog: bool = False  # the critics' loss compares symlog(Q) with symlog(y) (DreamerV3's compression)
    log_alpha_min: float = -5.0  # the learned log alpha is clamped to [log_alpha_min, log_alpha_max]
    log_alpha_max: float = 2.0
    alpha_lr: float | None = None  # alpha's optimizer is the actor's (class, settings, lr schedule); None: its lr
    fixed_alpha: float | None = None  # a constant alpha instead of a learned one
    alpha_anneal_frames: NonNegCount = 0  # with fixed_alpha: its linear decay to 0 over these frames; 0: constant
    spectral_norm: bool = False  # spectral normalization of the critics' penultimate Linear layer
    # the entropy alpha is tuned toward; auto: -action_dim (continuous), entropy_anneal's ratio x ln|A| (discrete)
    target_entropy: Literal["auto"] | float = "auto"
    entropy_anneal: EntropyAnneal | None = None  # discrete auto target; None: start_ratio 0.6, constant

    @field_validator("entropy_penalty_coef")
    @classmethod
    def _penalty(cls, v: float) -> float:
        if not v >= 0.0:
            raise ValueError(f"must be >= 0, got {v}")
        return v

    @field_validator("alpha_lr")
    @classmethod
    def _alpha_lr(cls, v: float | None) -> float | None:
        if v is not None and not v > 0.0:
            raise ValueError(f"a learning rate must be greater than 0, got {v}")
        return v

    @field_validator("fixed_alpha")
    @classmethod
    def _fixed_alpha(cls, v: float | None) -> float | None:
        if v is not None and not v >= 0.0:
            raise ValueError(f"the entropy weight must be >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _alpha_bounds(self) -> SACConfig:
        if not self.log_alpha_min < self.log_alpha_max:
            raise ValueError(f"log_alpha_min ({self.log_alpha_min}) must be below log_alpha_max ({self.log_alpha_max})")
        return self


def squash(loc: torch.Tensor, log_std: torch.Tensor, generator: torch.Generator, deterministic: bool = False,
           with_logp: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A reparameterized tanh-Gaussian sample, its noise drawn from `generator`, and its log-prob (None without
    `with_logp`), summed over action dims.

    log pi(a) = log N(u) - sum log(1 - tanh(u)^2).
    """
    std = log_std.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).exp()
    u = loc if deterministic else loc + std * torch.randn(loc.shape, generator=generator, dtype=loc.dtype,
                                                          device=loc.device)
    if not with_logp:
        return torch.tanh(u), None
    logp = torch.distributions.Normal(loc, std, validate_args=False).log_prob(u).sum(-1)
    return torch.tanh(u), logp - tanh_log_det(u)


def apply_spectral_norm(net: torch.nn.Module) -> None:
    """Spectral normalization (Miyato et al. 2018) of a Q net's penultimate Linear layer, the one before its
    output layer: SLM Lab's reading of the key, after Gogianu et al. (2021), who bound the critic's Lipschitz
    constant this way where normalizing every layer hurts."""
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    if len(linears) < 2:
        raise SpecError(f"spectral normalization applies to the critic's penultimate Linear layer, and this critic "
                        f"has {len(linears)} Linear layer(s)", path="agent.algorithm.spectral_norm")
    torch.nn.utils.parametrizations.spectral_norm(linears[-2])


@ALGORITHMS.register("SoftActorCritic", "SAC")
class SoftActorCritic(Algorithm):
    Config = SACConfig
    memories = ("Replay", "PrioritizedReplay")
    action_types = ("continuous", "multi_continuous", "discrete")

    @classmethod
    def check_spec(cls, spec: Spec, env_info: Any) -> None:
        super().check_spec(spec, env_info)
        if env_info is not None and env_info.is_discrete and spec.algorithm.action_pdtype not in ("default",
                                                                                                 "Categorical"):
            raise SpecError("discrete SoftActorCritic needs action_pdtype Categorical (an exact expectation over "
                            "actions)", path="agent.algorithm.action_pdtype")
        if env_info is not None and not env_info.is_discrete and spec.algorithm.entropy_penalty_coef > 0:
            raise SpecError("the entropy penalty applies to discrete actions only; set it to 0",
                            path="agent.algorithm.entropy_penalty_coef")

    # ---- nets ---------------------------------------------------------------------------------
    def critic_config(self) -> NetConfig:
        return self.spec.net.for_role("critic")

    def init_nets(self) -> None:
        cfg, info, net_cfg = self.config, self.env_info, self.spec.net
        self.discrete = info.is_discrete
        self.gamma = cfg.gamma
        self.training_frequency = cfg.training_frequency
        self.training_iter = cfg.training_iter or info.num_envs
        batch_size = int(getattr(self.spec.memory, "batch_size", 256))
        self.training_start_step = (cfg.training_start_step if cfg.training_start_step is not None
                                    else max(1000, batch_size))
        self.polyak_coef = net_cfg.polyak_coef if net_cfg.polyak_coef is not None else 0.005
        self.replace_every = net_cfg.update_frequency if net_cfg.update_type == "replace" else None
        A = info.action_dim
        actor_cfg = net_cfg.for_role("actor")
        self.actor = build_net(actor_cfg, info.state_shape, [A if self.discrete else 2 * A]).to(self.device)
        critic_cfg = self.critic_config()
        q_in = info.state_shape if self.discrete else (int(np.prod(info.state_shape)) + A,)
        q_out = [A if self.discrete else 1]
        self.q1 = build_net(critic_cfg, q_in, q_out).to(self.device)
        self.q2 = build_net(critic_cfg, q_in, q_out).to(self.device)
        if cfg.spectral_norm:
            apply_spectral_norm(self.q1)
            apply_spectral_norm(self.q2)
        self.init_targets()
        self.q_loss_fn = make_loss(critic_cfg.loss_spec)
        self.q_loss_each = copy.copy(self.q_loss_fn)  # per sample, for importance-sampling weights
        self.q_loss_each.reduction = "none"
        # prioritized replay: the sampled batch's importance weights (or None), whether its TD errors are wanted,
        # and after the critic loss those errors |min(Q1, Q2) - y| (SLM Lab's), the sampled slots' new priorities
        self.batch_weights: torch.Tensor | None = None
        self.prioritized = False
        self.td_errors: torch.Tensor | None = None
        fpu = max(1, cfg.training_frequency)
        self.optimizers["net"] = Optimizer(list(self.actor.parameters()), actor_cfg, fpu)
        self.optimizers["critic_net"] = Optimizer(list(self.q1.parameters()) + list(self.q2.parameters()),
                                                  critic_cfg, fpu, clip_groups=[list(self.q1.parameters()),
                                                                                list(self.q2.parameters())])
        # alpha: learned in log space, starting at 1 (log 0)
        self.log_alpha = torch.zeros(1, device=self.device, requires_grad=True)
        if cfg.fixed_alpha is None:  # as in SLM Lab: the actor's optimizer and lr schedule, alpha_lr if set
            optim = actor_cfg.optim_spec or ClassSpec(name="Adam", lr=1e-3)
            if cfg.alpha_lr is not None:
                optim = ClassSpec(**{**optim.model_dump(), "lr": cfg.alpha_lr})
            alpha_cfg = actor_cfg.model_copy(update={"optim_spec": optim, "clip_grad_val": None})
            self.optimizers["alpha"] = Optimizer([self.log_alpha], alpha_cfg, fpu)
        self.updates = 0  # critic updates, for policy_delay
        self.entropy = float("nan")
        self.twin_q = cfg.twin_q if cfg.twin_q != "auto" else ("mean" if self.discrete else "min")
        # discrete, critic_forward: the detached Q(s, .) of both critics from the last critic loss
        self.policy_q: tuple[torch.Tensor, torch.Tensor] | None = None
        self.entropy_ema: float | None = None  # the entropy penalty's moving average

    def init_targets(self) -> None:
        self.target_q1 = copy.deepcopy(self.q1).requires_grad_(False)
        self.target_q2 = copy.deepcopy(self.q2).requires_grad_(False)

    def nets(self) -> dict[str, torch.nn.Module]:
        return {"net": self.actor, "q1_net": self.q1, "q2_net": self.q2, "target_q1_net": self.target_q1,
                "target_q2_net": self.target_q2}

    # ---- the policy ---------------------------------------------------------------------------
    @property
    def alpha(self) -> float:
        cfg = self.config
        if cfg.fixed_alpha is not None:
            if cfg.alpha_anneal_frames:
                return cfg.fixed_alpha * max(0.0, 1.0 - self.clock.frame / cfg.alpha_anneal_frames)
            return cfg.fixed_alpha
        return float(self.log_alpha.detach().exp())

    def alpha_tensor(self) -> torch.Tensor:
        if self.config.fixed_alpha is not None:
            return torch.tensor(self.alpha, device=self.device)
        return self.log_alpha.detach().exp()

    @property
    def target_entropy(self) -> float:
        cfg = self.config
        if cfg.target_entropy != "auto":
            return float(cfg.target_entropy)
        if not self.discrete:
            return -float(self.env_info.action_dim)
        ann = cfg.entropy_anneal or EntropyAnneal()
        ratio = ann.start_ratio
        if ann.end_ratio is not None and ann.frames:
            ratio += (ann.end_ratio - ann.start_ratio) * min(1.0, self.clock.frame / ann.frames)
        return ratio * math.log(self.env_info.action_dim)

    def policy(self, states: torch.Tensor, generator: torch.Generator, deterministic: bool = False,
               with_logp: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous: (tanh action drawn from `generator`, log-prob). Discrete: (probs, log-probs) over all
        actions."""
        out = self.actor(states)
        if self.discrete:
            logp = torch.log_softmax(out, -1)
            return logp.exp(), logp
        loc, log_std = out.chunk(2, dim=-1)
        return squash(loc, log_std, generator, deterministic, with_logp)

    def act(self, state: np.ndarray) -> np.ndarray:
        n, g = state.shape[0], self.rng.act
        if self.training and self.clock.frame < self.training_start_step:
            if self.discrete:
                return random_action((n,), self.env_info.action_dim, g).cpu().numpy()
            uniform = torch.rand(n, self.env_info.action_dim, generator=g, device=g.device)
            return self.to_env_action(uniform * 2.0 - 1.0)
        with torch.inference_mode():
            x = self.to_tensor(state)
            if self.discrete:
                logits = self.actor(x)
                action = sample_logits(logits, g) if self.training else logits.argmax(-1)
            else:
                action, _ = self.policy(x, g, deterministic=not self.training, with_logp=False)
        return self.to_env_action(action)

    # ---- training -----------------------------------------------------------------------------
    def q_values(self, net: torch.nn.Module, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q(s, a) for continuous actions; Q(s, .) for discrete."""
        if self.discrete:
            return net(states)
        return net(torch.cat([states.flatten(1), actions], -1)).squeeze(-1)

    def twin(self, q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
        """The twin critics' values combined as `twin_q` says: their minimum or their mean."""
        return torch.min(q1, q2) if self.twin_q == "min" else (q1 + q2) / 2

    def soft_target(self, rewards: torch.Tensor, terminateds: torch.Tensor, next_q: tuple[torch.Tensor, ...],
                    next_pi: tuple[torch.Tensor, torch.Tensor], alpha: torch.Tensor) -> torch.Tensor:
        """y = r + gamma (1 - terminated) (twin(Q1', Q2') - alpha log pi(a'|s')); discrete: expectation over a'."""
        q = self.twin(*next_q)
        if self.discrete:
            probs, logp = next_pi
            v = (probs * (q - alpha * logp)).sum(-1)
        else:
            _, logp = next_pi
            v = q - alpha * logp
        return rewards + self.gamma * (1.0 - terminateds) * v

    def batch_tensors(self, batch: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
        states = self.to_tensor(batch["states"])
        next_states = self.to_tensor(batch["next_states"])
        if self.discrete:
            actions = torch.as_tensor(batch["actions"], device=self.device).long()
        else:
            actions = self.to_tensor(batch["actions"]).view(len(states), -1)
        return (states, actions, self.to_tensor(batch["rewards"]), next_states, self.to_tensor(batch["terminateds"]))

    def critic_loss(self, states: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
                    next_states: torch.Tensor, terminateds: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha_tensor()
        with torch.no_grad():
            next_pi = self.policy(next_states, self.rng.train)
            a_next = next_pi[0]
            next_q = (self.q_values(self.target_q1, next_states, a_next),
                      self.q_values(self.target_q2, next_states, a_next))
            y = self.soft_target(rewards, terminateds, next_q, next_pi, alpha)
        q1 = self.q_values(self.q1, states, actions)
        q2 = self.q_values(self.q2, states, actions)
        return self.td_loss(q1, q2, actions, y)

    def td_loss(self, q1: torch.Tensor, q2: torch.Tensor, actions: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Both critics' losses against the target y; discrete: Q(s, .) is kept for the policy loss
        (`discrete_policy_q: critic_forward`), then the taken action's value is read."""
        if self.discrete:
            if self.config.discrete_policy_q == "critic_forward":
                self.policy_q = (q1.detach(), q2.detach())
            q1, q2 = q1.gather(-1, actions[:, None]).squeeze(-1), q2.gather(-1, actions[:, None]).squeeze(-1)
        self.q_batches.append(q1.detach().mean())
        if self.prioritized:
            self.td_errors = (torch.min(q1, q2) - y).detach().abs()
        if self.config.symlog:  # the nets keep predicting raw values; only the loss compares compressed ones
            q1, q2, y = symlog(q1), symlog(q2), symlog(y)
        w = self.batch_weights
        if w is None:
            return self.q_loss_fn(q1, y) + self.q_loss_fn(q2, y)
        return (w * self.q_loss_each(q1, y)).mean() + (w * self.q_loss_each(q2, y)).mean()

    def actor_loss(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (policy loss, mean log pi) for the alpha loss."""
        alpha = self.alpha_tensor()
        pi, logp = self.policy(states, self.rng.train)
        if self.discrete and self.policy_q is not None:
            q = self.twin(*self.policy_q)
        else:
            q = self.twin(self.q_values(self.q1, states, pi), self.q_values(self.q2, states, pi))
        if self.discrete:
            loss = (pi * (alpha * logp - q)).sum(-1).mean()
            mean_logp = (pi * logp).sum(-1)
            if self.config.entropy_penalty_coef > 0:
                loss = loss + self.entropy_penalty(-mean_logp.mean())
        else:
            loss = (alpha * logp - q).mean()
            mean_logp = logp
        return loss, mean_logp.detach()

    def entropy_penalty(self, entropy: torch.Tensor) -> torch.Tensor:
        """beta/2 (H_ema - H)^2, H_ema the moving average of earlier updates' entropies (the first update's
        own value at the start), then H_ema <- 0.99 H_ema + 0.01 H (SD-SAC's penalty, as SLM Lab applies it)."""
        h = float(entropy.detach())
        if self.entropy_ema is None:
            self.entropy_ema = h
        penalty = self.config.entropy_penalty_coef * 0.5 * (self.entropy_ema - entropy) ** 2
        self.entropy_ema = 0.99 * self.entropy_ema + 0.01 * h
        return penalty

    def alpha_loss(self, mean_logp: torch.Tensor) -> torch.Tensor:
        """J(alpha) = E[-alpha (log pi + H_target)] (Haarnoja et al. 2018b, eq. 18)."""
        return -(self.log_alpha.exp() * (mean_logp + self.target_entropy)).mean()

    def update_policy(self, states: torch.Tensor) -> None:
        for q in (self.q1, self.q2):
            q.requires_grad_(False)
        loss, mean_logp = self.actor_loss(states)
        for q in (self.q1, self.q2):
            q.requires_grad_(True)
        self.step_optim("net", loss)
        self.entropy = -float(mean_logp.mean())
        if "alpha" in self.optimizers:
            if self.optimizers["alpha"].step(self.alpha_loss(mean_logp)):
                with torch.no_grad():
                    self.log_alpha.clamp_(self.config.log_alpha_min, self.config.log_alpha_max)

    def update_targets(self) -> None:
        if self.replace_every is not None:
            if self.clock.frame % self.replace_every < self.env_info.num_envs:
                copy_weights(self.q1, self.target_q1)
                copy_weights(self.q2, self.target_q2)
            return
        polyak_update(self.q1, self.target_q1, self.polyak_coef)
        polyak_update(self.q2, self.target_q2, self.polyak_coef)

    def train(self) -> float:
        losses = []
        for _ in range(self.training_iter):
            batch = self.memory.sample()
            states, actions, rewards, next_states, terminateds = self.batch_tensors(batch)
            self.batch_weights = self.to_tensor(batch["weights"]) if "weights" in batch else None
            self.prioritized = "priority_indices" in batch
            loss = self.critic_loss(states, actions, rewards, next_states, terminateds)
            self.step_optim("critic_net", loss)
            if self.prioritized:
                self.memory.update_priorities(batch["priority_indices"], self.td_errors.cpu().numpy())
            losses.append(loss.detach())
            self.updates += 1
            if self.updates % self.config.policy_delay == 0:
                self.update_policy(states)
                self.update_targets()
        self.end_q_batches()
        self.step_lr_schedulers()
        return float(torch.stack(losses).mean())

    # ---- logging and checkpoints --------------------------------------------------------------
    def log_values(self) -> dict[str, float]:
        out = super().log_values()
        out["alpha"] = self.alpha
        out["entropy"] = self.entropy
        out["q_mean"] = self.q_mean
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"log_alpha": self.log_alpha.detach().clone(), "updates": self.updates, "entropy": self.entropy,
                "q_mean": self.q_mean, "entropy_ema": self.entropy_ema}

    def load_extra_state(self, d: dict) -> None:
        if "log_alpha" in d:
            with torch.no_grad():
                self.log_alpha.copy_(d["log_alpha"])
        self.updates = int(d.get("updates", 0))
        self.entropy = d.get("entropy", float("nan"))
        self.q_mean = d.get("q_mean", float("nan"))
        self.entropy_ema = d.get("entropy_ema")
