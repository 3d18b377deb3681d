"""The DQN family (Mnih et al. 2015; van Hasselt et al. 2016) on a replay memory.

- VanillaDQN: target r + gamma (1 - terminated) max_a' Q(s', a') with the online net itself.
- DQN: a target net evaluates a'. Which net selects a' is `double_q`: SLM Lab's DQN lets the online net
  select it (its DQN computes Double DQN targets), so that is the default (`double_q: true`);
  `double_q: false` is the textbook DQN, where the target net both selects and evaluates a'.
- DoubleDQN: the online net selects a', the target net evaluates it (always).
Dueling is a net type (DuelingMLPNet). Per train call: `training_iter` sampled batches, each used for
`training_batch_iter` gradient steps. With PrioritizedReplay the sampled priorities are updated from
|TD error| before each step, and the loss is importance-weighted when the memory gives weights. Target nets: `replace` every `update_frequency`
frames or `polyak` after every training call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from looplab.agent.algorithm.base import ALGORITHMS
from looplab.agent.algorithm.sarsa import SARSA, SARSAConfig
from looplab.agent.net.base import build_net, copy_weights, polyak_update
from looplab.errors import SpecError
from looplab.spec.schema import NonNegCount, PositiveCount, Spec


class VanillaDQNConfig(SARSAConfig):
    training_frequency: PositiveCount = 1  # transitions (frames) stored between training calls
    training_iter: PositiveCount = 1  # batches sampled per training call
    training_batch_iter: PositiveCount = 1  # gradient steps on each sampled batch
    training_start_step: NonNegCount | None = None  # transitions stored before training starts; None: batch_size


class DQNConfig(VanillaDQNConfig):
    # SLM Lab's DQN selects a' with the online net (Double DQN targets); false: the textbook DQN target
    double_q: bool = True


@ALGORITHMS.register("VanillaDQN")
class VanillaDQN(SARSA):
    Config = VanillaDQNConfig
    memories = ("Replay", "PrioritizedReplay")
    uses_target_net = False

    @classmethod
    def check_spec(cls, spec: Spec, env_info: Any) -> None:
        super().check_spec(spec, env_info)
        net = spec.net
        if not cls.uses_target_net and net is not None:
            for key in ("update_type", "update_frequency", "polyak_coef"):
                if getattr(net, key) is not None:
                    raise SpecError(f"{spec.algorithm.name} has no target net; remove '{key}' or use DQN",
                                    path=f"agent.net.{key}")

    def init_nets(self) -> None:
        super().init_nets()
        cfg = self.config
        self.training_start_step = cfg.training_start_step if cfg.training_start_step is not None else (
            self.spec.memory.batch_size)
        self.target_net = None
        self.frames_since_replace = 0

    # ---- targets ------------------------------------------------------------------------------
    def next_q(self, next_states: torch.Tensor) -> torch.Tensor:
        """max_a' Q(s', a') as this variant estimates it."""
        return self.net(next_states).max(-1).values

    def targets(self, batch: dict[str, np.ndarray]) -> torch.Tensor:
        with torch.no_grad():
            next_q = self.next_q(self.to_tensor(batch["next_states"]))
            return (self.to_tensor(batch["rewards"])
                    + self.gamma * (1.0 - self.to_tensor(batch["terminateds"])) * next_q)

    # ---- training -----------------------------------------------------------------------------
    def train(self) -> float:
        losses = []
        for _ in range(self.config.training_iter):
            batch = self.memory.sample()
            states = self.to_tensor(batch["states"])
            actions = torch.as_tensor(batch["actions"], device=self.device)
            weights = self.to_tensor(batch["weights"]) if "weights" in batch else None
            for _ in range(self.config.training_batch_iter):
                targets = self.targets(batch)
                loss, td = self.td_loss(states, actions, targets, weights)
                self.step_optim("net", loss)
                losses.append(loss.detach())
                if hasattr(self.memory, "update_priorities"):
                    self.memory.update_priorities(batch["priority_indices"], td.abs().cpu().numpy())
        self.end_q_batches()
        self.step_lr_schedulers()
        return float(torch.stack(losses).mean())

    def update(self, state: np.ndarray, action: np.ndarray, reward: np.ndarray, next_state: np.ndarray,
               terminated: np.ndarray, truncated: np.ndarray) -> None:
        super().update(state, action, reward, next_state, terminated, truncated)
        if self.target_net is None or not self.training:
            return
        net_cfg = self.spec.net
        if net_cfg.update_type == "polyak":
            if self.memory.ready:
                polyak_update(self.net, self.target_net, net_cfg.polyak_coef)
            return
        self.frames_since_replace += self.env_info.num_envs
        if self.frames_since_replace >= (net_cfg.update_frequency or 1):
            self.frames_since_replace = 0
            copy_weights(self.net, self.target_net)

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "frames_since_replace": self.frames_since_replace}

    def load_extra_state(self, d: dict) -> None:
        super().load_extra_state(d)
        self.frames_since_replace = d.get("frames_since_replace", 0)


@ALGORITHMS.register("DQN")
class DQN(VanillaDQN):
    Config = DQNConfig
    uses_target_net = True

    def init_nets(self) -> None:
        super().init_nets()
        info = self.env_info
        self.target_net = build_net(self.spec.net, info.state_shape, [info.action_dim]).to(self.device)
        self.target_net.load_state_dict(self.net.state_dict())
        self.target_net.requires_grad_(False)

    def nets(self) -> dict[str, torch.nn.Module]:
        return {"net": self.net, "target_net": self.target_net}

    def next_q(self, next_states: torch.Tensor) -> torch.Tensor:
        if not self.config.double_q:
            return self.target_net(next_states).max(-1).values
        a = self.net(next_states).argmax(-1, keepdim=True)
        return self.target_net(next_states).gather(-1, a).squeeze(-1)


class DoubleDQNConfig(VanillaDQNConfig):
    pass


@ALGORITHMS.register("DoubleDQN")
class DoubleDQN(DQN):
    """DQN whose online net always selects a' (no `double_q` key: it is what the name says)."""

    Config = DoubleDQNConfig

    def next_q(self, next_states: torch.Tensor) -> torch.Tensor:
        a = self.net(next_states).argmax(-1, keepdim=True)
        return self.target_net(next_states).gather(-1, a).squeeze(-1)
