"""Self-imitation learning (Oh et al. 2018) on top of A2C (`SIL`) and PPO (`PPOSIL`).

After each on-policy update, the on-policy batch goes into a second replay memory with its discounted
returns R (bootstrapped from V where the batch cuts an episode), and `training_iter` sampled batches
each take `training_batch_iter` steps on
    -sil_policy_loss_coef * mean(log pi(a|s) * max(R - V(s), 0)) + sil_val_loss_coef * mean(max(R - V(s), 0)^2) / 2,
imitating only the past actions that did better than the current value estimate.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from looplab.agent.algorithm.actor_critic import ActorCritic, ActorCriticConfig
from looplab.agent.algorithm.base import ALGORITHMS
from looplab.agent.algorithm.ppo import PPO, PPOConfig
from looplab.agent.math import discounted_returns
from looplab.agent.memory.base import MEMORIES
from looplab.agent.memory.replay import Replay, ReplayConfig
from looplab.errors import SpecError
from looplab.spec.schema import PositiveCount, Spec


class SILConfig(ActorCriticConfig):
    sil_policy_loss_coef: float
    sil_val_loss_coef: float
    training_iter: PositiveCount
    training_batch_iter: PositiveCount


class PPOSILConfig(PPOConfig):
    sil_policy_loss_coef: float
    sil_val_loss_coef: float
    training_iter: PositiveCount
    training_batch_iter: PositiveCount


class ReturnReplay(Replay):
    """A replay of (state, action, return): the `rewards` slot holds the discounted return."""

    fields = ("states", "actions", "rewards")

    def add_rows(self, states: np.ndarray, actions: np.ndarray, returns: np.ndarray) -> None:
        n = len(returns)
        idx = (self.head + np.arange(n)) % self.max_size
        self.states[idx], self.actions[idx], self.rewards[idx] = states, actions, returns
        self.latest = idx[-self.num_envs:]
        self.head = int((self.head + n) % self.max_size)
        self.size = min(self.size + n, self.max_size)
        self.seen_size += n


class SILMixin:
    """The self-imitation phase, run after the on-policy algorithm's own train()."""

    @classmethod
    def check_spec(cls, spec: Spec, env_info: Any) -> None:
        super().check_spec(spec, env_info)
        mem = spec.memory
        if getattr(mem, "sil_replay_name", None) not in ("Replay",):
            raise SpecError("SIL needs memory.sil_replay_name: Replay (with batch_size and max_size)",
                            path="agent.memory.sil_replay_name")
        for key in ("batch_size", "max_size"):
            if getattr(mem, key, None) is None:
                raise SpecError("required key is missing", path=f"agent.memory.{key}")

    def init_nets(self) -> None:
        super().init_nets()
        mem = self.spec.memory
        MEMORIES.get(mem.sil_replay_name)  # the name is a registered memory
        cfg = ReplayConfig(name=mem.sil_replay_name, batch_size=mem.batch_size, max_size=mem.max_size,
                           use_cer=mem.use_cer)
        self.sil_memory = ReturnReplay(cfg, self.env_info, SimpleNamespace(training_start_step=0), self.rng.replay)

    def train(self) -> float:
        batch = self.memory.sample()
        self.memory.sample = lambda: batch  # the on-policy update reads the same batch
        try:
            loss = super().train()
        finally:
            del self.memory.sample
        self.store_returns(batch)
        sil_losses = [self.sil_step(self.sil_memory.sample())
                      for _ in range(self.config.training_iter) for _ in range(self.config.training_batch_iter)]
        return loss + float(np.mean(sil_losses))

    def store_returns(self, batch: dict[str, np.ndarray]) -> None:
        T, N = batch["rewards"].shape
        with torch.no_grad():
            v_next = self.value(self.to_tensor(batch["next_states"]).flatten(0, 1)).view(T, N).cpu().numpy()
        done = np.maximum(batch["terminateds"], batch["truncateds"])
        rets = discounted_returns(batch["rewards"], batch["terminateds"], done, self.gamma, next_values=v_next)
        self.sil_memory.add_rows(batch["states"].reshape(T * N, *batch["states"].shape[2:]),
                                 batch["actions"].reshape(T * N, *batch["actions"].shape[2:]), rets.reshape(-1))

    def sil_step(self, batch: dict[str, np.ndarray]) -> float:
        cfg = self.config
        states = self.to_tensor(batch["states"])
        actions = torch.as_tensor(batch["actions"], device=self.device)
        rets = self.to_tensor(batch["rewards"])
        v = self.value(states)
        clipped = (rets - v).clamp_min(0.0)
        logp = self.make_pd(self.policy_out(states), self.log_std).log_prob(actions)
        policy_loss = -cfg.sil_policy_loss_coef * (logp * clipped.detach()).mean()
        val_loss = cfg.sil_val_loss_coef * 0.5 * (clipped**2).mean()
        self.step_actor_critic(policy_loss, val_loss)
        return float((policy_loss + val_loss).detach())

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "sil_memory": self.sil_memory.state_dict()}

    def load_extra_state(self, d: dict) -> None:
        super().load_extra_state(d)
        if "sil_memory" in d:
            self.sil_memory.load_state_dict(d["sil_memory"])


@ALGORITHMS.register("SIL")
class SIL(SILMixin, ActorCritic):
    Config = SILConfig


@ALGORITHMS.register("PPOSIL")
class PPOSIL(SILMixin, PPO):
    Config = PPOSILConfig
