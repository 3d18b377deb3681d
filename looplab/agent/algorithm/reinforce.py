"""REINFORCE (Williams 1992): policy gradient on Monte Carlo returns, with an entropy bonus.

loss = -policy_loss_coef * mean(log pi(a|s) * A) - entropy_coef * mean(H), where A is the discounted
return (never bootstrapped), optionally mean-centred, then standardized. The return restarts at each
`terminated` step; `returns_reset_on: done` also restarts it at truncations. The default, `terminated`, is
SLM Lab's: a truncated episode's return runs on into the next episode's rewards, which credits the last
steps of a time-limited episode with about what a bootstrap from V would, where `done` credits them ~0.
The actor-critic family reads the same key for its GAE lambda-sums and n-step windows.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from looplab.agent.algorithm.base import ALGORITHMS, Algorithm, AlgorithmConfig
from looplab.agent.math import discounted_returns
from looplab.agent.net.base import Optimizer, build_net, init_tail
from looplab.agent.policy import entropy, greedy, out_dim, sample_logits, select_action
from looplab.agent.schedule import Schedule, ScheduleSpec
from looplab.agent.sde import StateDependentNoise, keep_input
from looplab.errors import SpecError
from looplab.spec.schema import PositiveCount, Spec


class PolicyGradientConfig(AlgorithmConfig):
    """The keys REINFORCE shares with the actor-critic family."""

    center_return: bool = False  # subtract the batch mean from the returns
    entropy_coef_spec: ScheduleSpec | None = None  # weight of the entropy bonus; None: no bonus
    policy_loss_coef: float = 1.0  # weight of the policy loss
    training_frequency: PositiveCount | None = None  # vector steps per rollout (episodes with OnPolicyReplay)
    # generalized state-dependent exploration (looplab.agent.sde): continuous actions, Normal pdtype
    use_sde: bool = False
    sde_sample_freq: int = -1  # steps between noise draws within a rollout; -1: one draw per rollout
    # where a return (REINFORCE), a GAE lambda-sum or an n-step window restarts: SLM Lab's `terminated`, or at
    # truncations too (`done`); a truncated step bootstraps from V(next_state) either way
    returns_reset_on: Literal["terminated", "done"] = "terminated"


class ReinforceConfig(PolicyGradientConfig):
    pass


def reset_points(batch: dict[str, np.ndarray], returns_reset_on: str) -> np.ndarray:
    """[T, N] 1 where a return or an advantage sum restarts: terminations, and truncations under `done`."""
    term = batch["terminateds"]
    return term if returns_reset_on == "terminated" else np.maximum(term, batch["truncateds"])


def standardize(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean()) / (x.std() + 1e-8) if x.numel() > 1 else x


@ALGORITHMS.register("Reinforce")
class Reinforce(Algorithm):
    Config = ReinforceConfig
    memories = ("OnPolicyBatchReplay", "OnPolicyReplay", "OnPolicyCrossEntropy")
    with_critic = False

    @classmethod
    def check_spec(cls, spec: Spec, env_info: Any) -> None:
        super().check_spec(spec, env_info)
        cfg = spec.algorithm
        if cfg.training_frequency is None and getattr(cfg, "num_step_returns", None) is None \
                and getattr(cfg, "time_horizon", None) is None:
            raise SpecError("required key is missing", path="agent.algorithm.training_frequency")
        if cfg.use_sde:
            if env_info is not None and env_info.action_type not in ("continuous", "multi_continuous"):
                raise SpecError(f"state-dependent exploration needs a continuous action space; {env_info.name}'s "
                                f"is {env_info.action_type}", path="agent.algorithm.use_sde")
            if cfg.action_pdtype not in ("default", "Normal"):
                raise SpecError(f"state-dependent exploration draws Normal actions; action_pdtype is "
                                f"'{cfg.action_pdtype}'", path="agent.algorithm.action_pdtype")
            if cfg.action_policy != "default":
                raise SpecError(f"state-dependent exploration is the policy's own noise; action_policy is "
                                f"'{cfg.action_policy}'", path="agent.algorithm.action_policy")
            if cfg.sde_sample_freq == 0 or cfg.sde_sample_freq < -1:
                raise SpecError("must be -1 (one draw per rollout) or a number of steps of at least 1",
                                path="agent.algorithm.sde_sample_freq")

    def init_nets(self) -> None:
        cfg = self.config
        self.training_frequency = cfg.training_frequency or 1
        self.gamma = cfg.gamma
        self.entropy_coef = Schedule(cfg.entropy_coef_spec, default=0.0)
        self.entropy = float("nan")
        self.build_nets()

    def build_nets(self) -> None:
        """Policy net (plus value tail or critic net when `with_critic`) and their optimizers."""
        net_cfg, info = self.spec.net, self.env_info
        self.shared = net_cfg.shared or not self.with_critic
        continuous = info.action_type in ("continuous", "multi_continuous")
        use_sde = self.config.use_sde and continuous
        learned_std = (net_cfg.log_std_init is not None or use_sde) and continuous
        pi_dim = out_dim(self.pdtype, info.action_dim, self.nvec, learned_std)
        # frames per train call, to convert lr-schedule frames into scheduler steps
        frames_per_update = self.training_frequency * info.num_envs
        if self.shared:
            out_dims = [pi_dim, 1] if self.with_critic else [pi_dim]
            self.net = build_net(net_cfg, info.state_shape, out_dims).to(self.device)
            init_tail(self.net.tails[0], net_cfg.actor_init_std)
            if self.with_critic:
                init_tail(self.net.tails[-1], net_cfg.critic_init_std)
            self.actor, self.critic = self.net, None
        else:
            self.actor = build_net(net_cfg.for_role("actor"), info.state_shape, [pi_dim]).to(self.device)
            self.critic = build_net(net_cfg.for_role("critic"), info.state_shape, [1]).to(self.device)
            self.net = self.actor  # actor_/critic_init_std reach the nets as init_std through for_role
        self.log_std = None
        self.sde: StateDependentNoise | None = None
        self.latent: torch.Tensor | None = None  # the actor's features of the last policy_out (gSDE)
        if use_sde:
            tail = self.actor.tails[0]
            self.actor.sde = self.sde = StateDependentNoise(
                tail.in_features, info.action_dim, net_cfg.log_std_init if net_cfg.log_std_init is not None
                else 0.0, self.config.sde_sample_freq).to(self.device)
            tail.register_forward_pre_hook(keep_input)
        elif learned_std:
            self.actor.log_std = torch.nn.Parameter(
                torch.full((info.action_dim,), float(net_cfg.log_std_init), device=self.device))
            self.log_std = self.actor.log_std
        if self.shared:  # as in SLM Lab, an actor-critic's shared net takes the actor's optim keys (actor_optim_spec)
            self.optimizers["net"] = Optimizer(list(self.net.parameters()),
                                               net_cfg.for_role("actor") if self.with_critic else net_cfg,
                                               frames_per_update)
        else:
            self.optimizers["net"] = Optimizer(list(self.actor.parameters()), net_cfg.for_role("actor"),
                                               frames_per_update)
            self.optimizers["critic_net"] = Optimizer(list(self.critic.parameters()), net_cfg.for_role("critic"),
                                                      frames_per_update)

    def nets(self) -> dict[str, torch.nn.Module]:
        return {"net": self.actor} if self.critic is None else {"net": self.actor, "critic_net": self.critic}

    # ---- acting -------------------------------------------------------------------------------
    def policy_out(self, x: torch.Tensor) -> torch.Tensor:
        out = self.actor(x)
        if self.sde is not None:
            self.latent = self.actor.tails[0].last_input
        return out[0] if isinstance(out, list) else out

    def make_pd(self, out: torch.Tensor, log_std: torch.Tensor | None = None):
        """The action distribution of policy output `out`; with gSDE its std is that of the state's noise,
        from the features of the same forward (policy_out)."""
        if self.sde is not None:
            log_std = self.sde.log_scale(self.latent)
        return super().make_pd(out, log_std)

    def sde_action(self, out: torch.Tensor) -> torch.Tensor:
        """The policy's mean `out` plus its state-dependent noise (a new rollout begins after each update)."""
        return out + self.sde.noise(self.latent, self.clock.opt_step, self.rng.act)

    def act(self, state: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.policy_out(self.to_tensor(state))
            action = self.select(out)
        return self.to_env_action(action)

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        if self.env_info.action_type in ("continuous", "multi_continuous"):
            # the memory stores the distribution's own sample, whose log-prob the loss needs (as SLM Lab
            # does); the env gets it in [-1, 1]: clipped, or its tanh for NormalTanh (policy.NormalTanh)
            self.sampled_action = action.cpu().numpy().reshape(-1, *self.env_info.action_space.shape)
            if self.pdtype == "NormalTanh":
                action = torch.tanh(action)
        return super().to_env_action(action)

    def update(self, state: np.ndarray, action: np.ndarray, reward: np.ndarray, next_state: np.ndarray,
               terminated: np.ndarray, truncated: np.ndarray) -> None:
        if self.env_info.action_type in ("continuous", "multi_continuous"):
            action = self.sampled_action
        super().update(state, action, reward, next_state, terminated, truncated)

    def select(self, out: torch.Tensor) -> torch.Tensor:
        """An action per env under `action_policy`; greedy (or end-of-schedule exploration) when not training."""
        policy = self.config.action_policy
        if policy == "random" and not self.env_info.is_discrete:
            if not self.training:
                return greedy(self.make_pd(out, self.log_std))
            g = self.rng.act
            return torch.rand(out.shape[0], self.env_info.action_dim, generator=g, device=out.device) * 2 - 1
        if self.sde is not None and self.training:
            return self.sde_action(out)
        if not self.training:
            if policy in ("epsilon_greedy", "boltzmann"):
                return select_action(policy, None, out, self.explore_var.end_value(), self.env_info.action_dim,
                                     self.rng.act)
            return greedy(self.make_pd(out, self.log_std))
        if policy == "default" and self.pdtype == "Categorical":  # without building the distribution
            return sample_logits(out, self.rng.act)
        return select_action(policy, lambda o: self.make_pd(o, self.log_std), out,
                             self.explore_var.value(self.clock.frame), self.env_info.action_dim, self.rng.act)

    # ---- training -----------------------------------------------------------------------------
    def flat_batch(self, batch: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """States [T*N, ...] and actions [T*N, ...] of a [T, N] batch."""
        states = self.to_tensor(batch["states"]).flatten(0, 1)
        actions = torch.as_tensor(batch["actions"], device=self.device).flatten(0, 1)
        return states, actions

    def policy_loss(self, states: torch.Tensor, actions: torch.Tensor, advs: torch.Tensor) -> torch.Tensor:
        pd = self.make_pd(self.policy_out(states), self.log_std)
        ent = entropy(pd, self.rng.train).mean()
        self.entropy = float(ent.detach())
        loss = -(pd.log_prob(actions) * standardize(advs)).mean()
        return self.config.policy_loss_coef * loss - self.entropy_coef.value(self.clock.frame) * ent

    def returns(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Monte Carlo returns [T, N] of a batch, restarted per `returns_reset_on`, mean-centred if asked."""
        term = batch["terminateds"]
        reset = reset_points(batch, self.config.returns_reset_on)
        rets = discounted_returns(batch["rewards"], term, reset, self.gamma)
        return rets - rets.mean() if self.config.center_return else rets

    def train(self) -> float:
        batch = self.memory.sample()
        rets = self.returns(batch)
        states, actions = self.flat_batch(batch)
        loss = self.policy_loss(states, actions, self.to_tensor(rets).flatten())
        self.step_optim("net", loss)
        self.step_lr_schedulers()
        return float(loss.detach())

    def log_values(self) -> dict[str, float]:
        out = super().log_values()
        out["entropy"] = self.entropy
        out["entropy_coef"] = self.entropy_coef.value(self.clock.frame)
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"entropy": self.entropy, "sde": self.sde.state() if self.sde is not None else None}

    def load_extra_state(self, d: dict) -> None:
        self.entropy = d.get("entropy", float("nan"))
        if self.sde is not None and d.get("sde"):
            self.sde.load_state(d["sde"])
