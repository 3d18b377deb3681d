"""Generalized state-dependent exploration (gSDE; Raffin, Kober and Stulp 2021, "Smooth Exploration for
Robotic Reinforcement Learning"), for the continuous policies of the policy-gradient family.

Instead of fresh Gaussian noise at every step, the action's noise is a function of the state:
`noise = z(s) @ E`, where z(s) are the actor's last hidden features (the input of its policy layer) and E
a [features, actions] matrix of N(0, sigma^2) draws, one matrix per env, held for a while: drawn at the
first step of each rollout (after each training step) and, with `sde_sample_freq: n > 0`, every n steps
within it. sigma = exp(log_std) is learned, one entry per (feature, action). Given s, the action is then
Normal(mu(s), sqrt(z(s)^2 @ sigma^2)) distributed, and that is the distribution whose log-prob and entropy
the losses use. The features enter the std detached, as in Stable-Baselines3's default
(`learn_features=False`): the std's gradient reaches sigma, not the body.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# added to the variance before its square root, as Stable-Baselines3 does: a state whose features are all
# zero still has a finite log-prob
VAR_EPS = 1e-6


def keep_input(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
    """A forward pre-hook on the policy layer keeping its input, the actor's features z(s)."""
    module.last_input = args[0]


class StateDependentNoise(nn.Module):
    """sigma (a parameter, saved with the actor) and the noise matrices in use (saved with the algorithm)."""

    def __init__(self, features: int, actions: int, log_std_init: float, sample_freq: int):
        super().__init__()
        self.log_std = nn.Parameter(torch.full((features, actions), float(log_std_init)))
        self.sample_freq = sample_freq
        self.matrices: torch.Tensor | None = None  # [envs, features, actions]
        self.steps = 0  # acting steps in the current rollout
        self.rollout = -1  # the rollout (count of training steps) the matrices were drawn in

    def log_scale(self, latent: torch.Tensor) -> torch.Tensor:
        """log std [B, actions] of the action given features `latent` [B, features]."""
        var = latent.detach().pow(2) @ self.log_std.exp().pow(2)
        return 0.5 * torch.log(var + VAR_EPS)

    @torch.no_grad()
    def noise(self, latent: torch.Tensor, rollout: int, generator: torch.Generator) -> torch.Tensor:
        """The noise [N, actions] of one acting step of N envs in rollout `rollout`, drawing new matrices
        from `generator` when they are due."""
        if rollout != self.rollout:
            self.rollout, self.steps = rollout, 0
        due = self.steps == 0 or (self.sample_freq > 0 and self.steps % self.sample_freq == 0)
        if due or self.matrices is None or self.matrices.shape[0] != latent.shape[0]:
            std = self.log_std.exp()
            self.matrices = std * torch.randn((latent.shape[0], *std.shape), generator=generator,
                                              dtype=std.dtype, device=std.device)
        self.steps += 1
        return torch.bmm(latent.unsqueeze(1), self.matrices).squeeze(1)

    def state(self) -> dict[str, Any]:
        return {"matrices": None if self.matrices is None else self.matrices.clone(), "steps": self.steps,
                "rollout": self.rollout}

    def load_state(self, d: dict[str, Any]) -> None:
        m = d.get("matrices")
        self.matrices = None if m is None else m.to(self.log_std.device)
        self.steps, self.rollout = int(d.get("steps", 0)), int(d.get("rollout", -1))
