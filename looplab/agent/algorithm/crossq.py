"""CrossQ (Bhatt et al. 2024): SAC without target networks, with batch-renormalized critics.

The critics see (s, a) and (s', a') in ONE forward pass in train mode, so that their batch
normalization statistics mix both distributions; the target half is detached. The actor is updated
with the critics in eval mode (running statistics); for discrete actions it reads, by default, the
critics' train-mode outputs from the critic loss's forward (`discrete_policy_q`). Critics come from
`agent.critic_net` when given (usually a TorchArcNet with LazyBatchRenorm1d layers), else from `agent.net`.
"""

from __future__ import annotations

import torch

from looplab.agent.algorithm.base import ALGORITHMS
from looplab.agent.algorithm.sac import SoftActorCritic
from looplab.agent.net.base import NetConfig


@ALGORITHMS.register("CrossQ")
class CrossQ(SoftActorCritic):
    def critic_config(self) -> NetConfig:
        return self.spec.critic_net if self.spec.critic_net is not None else self.spec.net.for_role("critic")

    def init_targets(self) -> None:
        pass  # no target nets

    def nets(self) -> dict[str, torch.nn.Module]:
        return {"net": self.actor, "q1_net": self.q1, "q2_net": self.q2}

    def joint_q(self, net: torch.nn.Module, states: torch.Tensor, actions: torch.Tensor,
                next_states: torch.Tensor, next_actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q(s, a) and Q(s', a') from one train-mode forward of the concatenated batch."""
        n = states.shape[0]
        q = self.q_values(net, torch.cat([states, next_states]), torch.cat([actions, next_actions]))
        return q[:n], q[n:]

    def critic_loss(self, states: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
                    next_states: torch.Tensor, terminateds: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha_tensor()
        with torch.no_grad():
            next_pi = self.policy(next_states, self.rng.train)
        a_next = next_pi[0]
        if self.discrete:  # Q(s, .) needs no action input; keep one joint batch all the same
            actions_in, a_next_in = actions, actions
        else:
            actions_in, a_next_in = actions, a_next
        self.q1.train()
        self.q2.train()
        q1, q1_next = self.joint_q(self.q1, states, actions_in, next_states, a_next_in)
        q2, q2_next = self.joint_q(self.q2, states, actions_in, next_states, a_next_in)
        y = self.soft_target(rewards, terminateds, (q1_next.detach(), q2_next.detach()), next_pi, alpha)
        return self.td_loss(q1, q2, actions, y)

    def update_policy(self, states: torch.Tensor) -> None:
        self.q1.eval()
        self.q2.eval()
        try:
            super().update_policy(states)
        finally:
            self.q1.train()
            self.q2.train()

    def update_targets(self) -> None:
        pass
