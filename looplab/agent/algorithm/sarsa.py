"""SARSA (Rummery & Niranjan 1994): on-policy TD control on batches of vector-env steps.

target = r + gamma * (1 - terminated) * Q(s', a'), with a' the action actually taken next in the same env.
Where that action is not in the batch (last step of the batch, or the step ended an episode, so the
next stored action belongs to a new episode) a' is drawn from the current action policy at s'.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from looplab.agent.algorithm.base import ALGORITHMS, Algorithm, AlgorithmConfig
from looplab.agent.net.base import Optimizer, build_net
from looplab.agent.net.optim import make_loss
from looplab.agent.policy import POLICIES, select_action
from looplab.spec.schema import PositiveCount


class SARSAConfig(AlgorithmConfig):
    action_pdtype: str = "Argmax"
    action_policy: str = "epsilon_greedy"
    training_frequency: PositiveCount  # vector steps per on-policy batch (episodes with OnPolicyReplay)


def sarsa_next_actions(actions: np.ndarray, done: np.ndarray, policy_actions: np.ndarray) -> np.ndarray:
    """a'[t] = a[t+1] within an episode; the policy's action at s'[t] at episode ends and at the batch end."""
    nxt = np.empty_like(actions)
    nxt[:-1] = actions[1:]
    boundary = done.astype(bool).copy()
    boundary[-1] = True
    return np.where(boundary, policy_actions, nxt)


@ALGORITHMS.register("SARSA")
class SARSA(Algorithm):
    Config = SARSAConfig
    action_types = ("discrete",)
    memories = ("OnPolicyBatchReplay", "OnPolicyReplay")

    def init_nets(self) -> None:
        cfg, net_cfg, info = self.config, self.spec.net, self.env_info
        assert cfg.action_policy in POLICIES
        self.gamma = cfg.gamma
        self.training_frequency = cfg.training_frequency
        self.net = build_net(net_cfg, info.state_shape, [info.action_dim]).to(self.device)
        self.loss_fn = make_loss(net_cfg.loss_spec)
        self.loss_fn.reduction = "none"  # elementwise, so that importance weights can scale it
        self.optimizers["net"] = Optimizer(list(self.net.parameters()), net_cfg,
                                           self.training_frequency * info.num_envs)

    def nets(self) -> dict[str, torch.nn.Module]:
        return {"net": self.net}

    def explore_value(self) -> float:
        return self.explore_var.value(self.clock.frame) if self.training else self.explore_var.end_value()

    def choose(self, q: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The policy's action for Q values `q`, drawn from `generator`."""
        policy = self.config.action_policy
        if not self.training and policy in ("default", "random"):
            return q.argmax(-1)
        return select_action(policy, self.make_pd, q, self.explore_value(), self.env_info.action_dim, generator)

    def act(self, state: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            action = self.choose(self.net(self.to_tensor(state)), self.rng.act)
        return self.to_env_action(action)

    def log_values(self) -> dict[str, float]:
        return {**super().log_values(), "q_mean": self.q_mean}

    def extra_state(self) -> dict[str, Any]:
        return {"q_mean": self.q_mean}

    def load_extra_state(self, d: dict) -> None:
        self.q_mean = d.get("q_mean", float("nan"))

    def td_loss(self, states: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor,
                weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted mean loss, TD errors) of Q(s, a) against `targets`."""
        q = self.net(states).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        self.q_batches.append(q.detach().mean())
        elementwise = self.loss_fn(q, targets)
        loss = elementwise.mean() if weights is None else (weights * elementwise).mean()
        return loss, (targets - q).detach()

    def train(self) -> float:
        batch = self.memory.sample()
        T, N = batch["rewards"].shape
        states = self.to_tensor(batch["states"]).flatten(0, 1)
        next_states = self.to_tensor(batch["next_states"]).flatten(0, 1)
        with torch.no_grad():
            q_next = self.net(next_states)
            policy_a = self.choose(q_next, self.rng.train).view(T, N).cpu().numpy()
        done = np.maximum(batch["terminateds"], batch["truncateds"])
        a_next = torch.as_tensor(sarsa_next_actions(batch["actions"], done, policy_a), device=self.device)
        q_sa_next = q_next.gather(-1, a_next.flatten().long().unsqueeze(-1)).squeeze(-1)
        targets = (self.to_tensor(batch["rewards"]).flatten()
                   + self.gamma * (1.0 - self.to_tensor(batch["terminateds"]).flatten()) * q_sa_next)
        actions = torch.as_tensor(batch["actions"], device=self.device).flatten()
        loss, _ = self.td_loss(states, actions, targets)
        self.step_optim("net", loss)
        self.end_q_batches()
        self.step_lr_schedulers()
        return float(loss.detach())
