"""The per-step shortcuts equal what they replace: target-net copies, acting without the log-prob."""

from __future__ import annotations

import torch

from looplab.agent.algorithm.sac import squash
from looplab.agent.net.base import copy_weights


def test_copy_weights_equals_load_state_dict_with_buffers():
    def net():
        return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))

    src, by_copy, by_load = net(), net(), net()
    src.train()(torch.randn(8, 3))  # running statistics and num_batches_tracked move
    copy_weights(src, by_copy)
    by_load.load_state_dict(src.state_dict())
    a, b = by_copy.state_dict(), by_load.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["1.num_batches_tracked"]) == 1


def test_acting_without_the_log_prob_samples_the_same_action():
    loc, log_std = torch.randn(5, 2), torch.randn(5, 2)
    with_logp, logp = squash(loc, log_std, torch.Generator().manual_seed(0))
    without, none = squash(loc, log_std, torch.Generator().manual_seed(0), with_logp=False)
    assert torch.equal(with_logp, without) and logp.shape == (5,) and none is None
