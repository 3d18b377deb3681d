"""checkpoint.snapshot: the best-MA state kept in memory is a copy later training cannot change."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import torch

from looplab.experiment.checkpoint import snapshot


def test_snapshot_equals_deepcopy_and_is_independent_of_the_original():
    net = torch.nn.BatchNorm1d(3)
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    arr = np.arange(4.0)
    state = {"nets": {"net": net.state_dict()}, "optims": {"net": opt.state_dict()},
             "env": {"tracker": {"ep_return": arr, "returns": [1.0, 2.5]}, "rng": {"state": {"key": 3}},
                     "pair": (arr, "x")}, "frame": 7}
    snap, deep = snapshot(state), copy.deepcopy(state)
    sd = snap["nets"]["net"]
    assert isinstance(sd, OrderedDict) and sd._metadata == net.state_dict()._metadata  # module versions kept
    with torch.no_grad():
        net.weight.add_(1.0)
    opt.state_dict()["state"][0]["exp_avg"].add_(1.0)
    arr += 10
    assert torch.equal(sd["weight"], deep["nets"]["net"]["weight"]) and not torch.equal(sd["weight"], net.weight)
    assert torch.equal(snap["optims"]["net"]["state"][0]["exp_avg"], deep["optims"]["net"]["state"][0]["exp_avg"])
    np.testing.assert_array_equal(snap["env"]["tracker"]["ep_return"], np.arange(4.0))
    assert snap["env"]["pair"][1] == "x" and snap["env"]["pair"][0] is not arr
    net2 = torch.nn.BatchNorm1d(3)
    net2.load_state_dict(sd)  # loads as a state_dict does
    assert torch.equal(net2.running_mean, deep["nets"]["net"]["running_mean"])
