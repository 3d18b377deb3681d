"""Seeds: one root seed per run (`meta.random_seed`), one derived seed per (trial, session)."""

from __future__ import annotations

import random
import secrets

import numpy as np
import torch


def root_seed(given: int | None) -> int:
    return int(given) if given is not None else secrets.randbelow(2**31 - 1)


def session_seed(root: int, trial: int, session: int) -> int:
    """Deterministic and well spread: SeedSequence of (root, trial, session)."""
    return int(np.random.SeedSequence([root, trial, session]).generate_state(1)[0] % (2**31 - 1))


EVAL_STREAM = 0x6576616C  # "eval": the evaluation env's seeds form a stream apart from every session's


def eval_seed(session_seed: int) -> int:
    """The seed of a session's evaluation env, apart from its training env's."""
    return derived_seed(session_seed, EVAL_STREAM)


def derived_seed(seed: int, *keys: int) -> int:
    """A seed for (seed, keys...) that no other key combination shares by construction."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0] % (2**31 - 1))


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's global generators, for third-party code that draws from them (an env, a
    torch op that takes no generator); LoopLab's own draws come from the agent's streams (looplab.agent.rng)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
