"""MLPNet: fully connected body, one linear tail per output."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from looplab.agent.net.base import (
    NETS,
    Net,
    NetConfig,
    activation,
    activation_gain,
    apply_tails,
    init_params,
    make_tails,
)
from looplab.spec.schema import Width


class MLPNetConfig(NetConfig):
    hid_layers: list[Width] = [64, 64]
    actor_hid_layers: list[Width] | None = None
    critic_hid_layers: list[Width] | None = None
    actor_hid_layers_activation: str | None = None
    critic_hid_layers_activation: str | None = None
    # SLM Lab's MLPNet accepts and ignores `normalize` (only image nets divide by 255); specs set it
    normalize: bool = False


def mlp_body(in_dim: int, hid_layers: list[int], act: str, layer_norm: bool, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for out in hid_layers:
        layers.append(nn.Linear(in_dim, out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(out))
        if layer_norm:
            layers.append(nn.LayerNorm(out))
        layers.append(activation(act))
        in_dim = out
    return nn.Sequential(*layers)


@NETS.register("MLPNet")
class MLPNet(Net):
    Config = MLPNetConfig

    def __init__(self, config: MLPNetConfig, in_shape: tuple[int, ...], out_dims: list[int]):
        super().__init__(config, in_shape, out_dims)
        in_dim = int(np.prod(in_shape))
        self.body = mlp_body(in_dim, config.hid_layers, config.hid_layers_activation, config.layer_norm,
                             config.batch_norm)
        feat = config.hid_layers[-1] if config.hid_layers else in_dim
        init_params(self.body, config.init_fn, activation_gain(config.hid_layers_activation))
        self.tails, self.out_acts = make_tails(feat, out_dims, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        return apply_tails(self.tails, self.out_acts, self.body(x.flatten(1) if x.dim() > 2 else x))
