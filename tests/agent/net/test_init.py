"""init_fn: hidden layers take their activation's gain; output layers `out_layer_init_gain` (SLM Lab: the same)."""

from __future__ import annotations

import math

import pytest
import torch

from looplab.agent.net import NETS
from looplab.agent.net.base import activation_gain, build_net
from looplab.spec.schema import validate_model

ARC = {"modules": {"body": {"Sequential": [{"LazyLinear": {"out_features": 16}}, {"Tanh": None}]}},
       "graph": {"input": "x", "modules": {"body": ["x"]}, "output": "body"}}
# net type -> (extra keys, input shape, output layers of the built net)
NETS_WITH_INIT = {
    "MLPNet": ({"hid_layers": [16]}, (4,), lambda n: list(n.tails)),
    "DuelingMLPNet": ({"hid_layers": [16]}, (4,), lambda n: [n.v, n.adv]),
    "TorchArcNet": ({"arc": ARC}, (4,), lambda n: list(n.tails)),
    "RecurrentNet": ({"fc_hid_layers": [16], "rnn_hidden_size": 16, "seq_len": 2}, (2, 4), lambda n: list(n.tails)),
    "ConvNet": ({"conv_hid_layers": [[2, 3, 1]], "fc_hid_layers": [16], "batch_norm": False}, (1, 5, 5),
                lambda n: list(n.tails)),
    "DuelingConvNet": ({"conv_hid_layers": [[2, 3, 1]], "fc_hid_layers": [16], "batch_norm": False}, (1, 5, 5),
                       lambda n: [n.v, n.adv]),
}


def orthogonal_gain(layer: torch.nn.Linear) -> float:
    """An orthogonal_ init with gain g has W W^T = g^2 I (fewer rows than columns)."""
    w = layer.weight.detach()
    wwt = w @ w.T
    g2 = float(wwt.diagonal().mean())
    assert torch.allclose(wwt, g2 * torch.eye(len(w)), atol=1e-5)
    return math.sqrt(g2)


def make(net_type: str, **keys):
    extra, in_shape, outs = NETS_WITH_INIT[net_type]
    cfg = validate_model(NETS.get(net_type).Config, {"type": net_type, "init_fn": "orthogonal_",
                                                     "hid_layers_activation": "tanh", **extra, **keys})
    torch.manual_seed(0)
    return outs(build_net(cfg, in_shape, [3]))


@pytest.mark.parametrize("net_type", NETS_WITH_INIT)
def test_output_layers_take_the_hidden_activation_gain_by_default(net_type):
    for layer in make(net_type):
        assert orthogonal_gain(layer) == pytest.approx(5 / 3, rel=1e-5)


@pytest.mark.parametrize("net_type", NETS_WITH_INIT)
def test_out_layer_init_gain_sets_the_output_gain(net_type):
    for layer in make(net_type, out_layer_init_gain=1.0):
        assert orthogonal_gain(layer) == pytest.approx(1.0, rel=1e-5)


def test_hidden_layer_gain_and_spec_activation_names():
    cfg = validate_model(NETS.get("MLPNet").Config, {"type": "MLPNet", "init_fn": "orthogonal_", "hid_layers": [3],
                                                     "hid_layers_activation": "leakyrelu"})
    net = build_net(cfg, (8,), [2])
    assert orthogonal_gain(net.body[0]) == pytest.approx(math.sqrt(2 / (1 + 0.01**2)), rel=1e-5)
    assert activation_gain("Tanh") == pytest.approx(5 / 3)
    assert activation_gain("selu") == pytest.approx(0.75)
    assert activation_gain("gelu") == 1.0  # no gain defined in torch


def test_out_layer_init_gain_is_validated():
    from looplab.errors import SpecError

    with pytest.raises(SpecError, match="out_layer_init_gain"):
        validate_model(NETS.get("MLPNet").Config, {"type": "MLPNet", "out_layer_init_gain": "tanh"}, "agent.net")
