"""A session's random streams: named torch and NumPy generators, each from its own spawn of the seed.

Every random draw of an algorithm, its memory and its action policy comes from one of these streams,
never from torch's or NumPy's global generator, so a session's actions and updates depend on its seed
alone, and a checkpoint saves and restores the streams by name (`state_dict`):

- `act` (torch, on the agent's device): acting and exploration: action samples, epsilon-greedy coins,
  Boltzmann, random actions (SAC's before `training_start_step`).
- `train` (torch, on the agent's device): draws of a training update: PPO's minibatch order, SAC's
  reparameterized noise, NormalTanh's entropy estimate, SARSA's policy actions at a batch's ends.
- `replay` (NumPy): the transitions a replay memory samples (uniform, prioritized, SIL's replay).
- `space` (NumPy): samples of a Gymnasium action space (the Random agent's).

`init_seed` seeds the nets' initialization: torch.nn's initializers draw from the global (CPU) torch
generator and take no generator, so an algorithm builds its nets with that generator seeded, in a fork of
it (`Algorithm.__init__`). The env draws from generators of its own, seeded by its first reset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _torch_generator(seq: np.random.SeedSequence, device: torch.device) -> torch.Generator:
    return torch.Generator(device).manual_seed(int(seq.generate_state(1, np.uint64)[0]))


class Rng:
    """The named generators of one session (see the module docstring)."""

    def __init__(self, seed: int, device: torch.device | str = "cpu"):
        act, train, replay, space, init = np.random.SeedSequence(seed).spawn(5)
        device = torch.device(device)
        self.act = _torch_generator(act, device)
        self.train = _torch_generator(train, device)
        self.replay = np.random.default_rng(replay)
        self.space = np.random.default_rng(space)
        self.init_seed = int(init.generate_state(1, np.uint64)[0])

    def generators(self) -> dict[str, torch.Generator | np.random.Generator]:
        return {"act": self.act, "train": self.train, "replay": self.replay, "space": self.space}

    def state_dict(self) -> dict[str, Any]:
        """Each stream's state by name: a torch generator's as a tensor, a NumPy one's as a dict."""
        return {name: g.get_state() if isinstance(g, torch.Generator) else g.bit_generator.state
                for name, g in self.generators().items()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for name, g in self.generators().items():
            if isinstance(g, torch.Generator):
                g.set_state(d[name])
            else:
                g.bit_generator.state = d[name]
