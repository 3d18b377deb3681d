"""The session's random streams (`looplab.agent.rng`) and drawing actions from them (`policy.sample`): the
law of every action distribution, reproducible from the generator alone, the global generators untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from looplab.agent.policy import DISTRIBUTIONS, make_pd, sample
from looplab.agent.rng import Rng


def _draws(rng: Rng) -> list:
    return [torch.rand(3, generator=rng.act), torch.rand(3, generator=rng.train), rng.replay.random(3),
            rng.space.random(3)]


def test_streams_are_independent_per_name_and_restored_by_name():
    rng = Rng(7)
    first = _draws(rng)
    assert len({float(x[0]) for x in first}) == 4  # four streams, four different draws
    saved = rng.state_dict()
    assert set(saved) == {"act", "train", "replay", "space"}
    ahead = _draws(rng)
    rng.load_state_dict(saved)
    for a, b in zip(ahead, _draws(rng), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    again, other = _draws(Rng(7)), _draws(Rng(8))
    for a, b, c in zip(first, again, other, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert not np.array_equal(np.asarray(a), np.asarray(c))


N = 40000
# a policy head's output, repeated N times, per pdtype: logits or [loc, log_scale] of 2 action dims
HEADS = {"Categorical": [0.5, -0.3, 1.0], "Argmax": [0.5, -0.3, 1.0], "GumbelSoftmax": [0.5, -0.3, 1.0],
         "MultiCategorical": [0.2, -0.4, 0.0, 1.0, 0.3], "Bernoulli": [0.4, -1.0]}
CONTINUOUS = [0.3, -0.5, -0.7, -1.0]


@pytest.mark.parametrize("pdtype", sorted(DISTRIBUTIONS.names()))
def test_sample_has_the_distributions_law_and_draws_from_the_generator_alone(pdtype):
    out = torch.tensor(HEADS.get(pdtype, CONTINUOUS)).repeat(N, 1)
    pd = make_pd(pdtype, out, nvec=[3, 2] if pdtype == "MultiCategorical" else None)
    before = torch.get_rng_state()
    x = sample(pd, torch.Generator().manual_seed(0))
    assert torch.equal(before, torch.get_rng_state())
    assert torch.equal(x, sample(pd, torch.Generator().manual_seed(0)))
    torch.manual_seed(0)
    y = pd.sample()  # torch's own sampler, from the global generator
    assert x.shape == y.shape and x.dtype == y.dtype
    if x.dtype == torch.long and x.dim() == 1:  # one categorical: the frequency of each action
        x, y = torch.nn.functional.one_hot(x, 3), torch.nn.functional.one_hot(y, 3)
    x, y = x.double(), y.double()
    torch.testing.assert_close(x.mean(0), y.mean(0), atol=0.02, rtol=0.0)
    torch.testing.assert_close(x.std(0), y.std(0), atol=0.02, rtol=0.0)
