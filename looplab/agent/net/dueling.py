"""DuelingMLPNet (Wang et al. 2016): Q(s, a) = V(s) + A(s, a) - mean_a A(s, a) on an MLP body."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from looplab.agent.net.base import NETS, Net, activation_gain, init_params, out_layer_gain
from looplab.agent.net.mlp import MLPNetConfig, mlp_body


@NETS.register("DuelingMLPNet")
class DuelingMLPNet(Net):
    Config = MLPNetConfig

    def __init__(self, config: MLPNetConfig, in_shape: tuple[int, ...], out_dims: list[int]):
        super().__init__(config, in_shape, out_dims)
        if len(out_dims) != 1:
            raise ValueError("DuelingMLPNet has one output (Q values per action)")
        in_dim = int(np.prod(in_shape))
        self.body = mlp_body(in_dim, config.hid_layers, config.hid_layers_activation, config.layer_norm,
                             config.batch_norm)
        feat = config.hid_layers[-1] if config.hid_layers else in_dim
        self.v = nn.Linear(feat, 1)
        self.adv = nn.Linear(feat, out_dims[0])
        init_params(self.body, config.init_fn, activation_gain(config.hid_layers_activation))
        init_params(nn.ModuleList([self.v, self.adv]), config.init_fn, out_layer_gain(config))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x.flatten(1) if x.dim() > 2 else x)
        a = self.adv(h)
        return self.v(h) + a - a.mean(-1, keepdim=True)
