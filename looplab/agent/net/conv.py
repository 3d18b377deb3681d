"""ConvNet and DuelingConvNet: a convolutional body on (C, H, W) images, then the MLP / dueling head.

`conv_hid_layers` lists [out_channels, kernel_size, stride, padding, dilation] per layer (trailing
entries optional), `fc_hid_layers` the fully connected layers after flattening; `normalize` divides
uint8 pixel inputs by 255 inside the net, so that images stay uint8 in the env and in memory.
"""

from __future__ import annotations

import torch
from pydantic import field_validator
from torch import nn

from looplab.agent.net.base import NETS, activation, activation_gain, init_params
from looplab.agent.net.dueling import DuelingMLPNet
from looplab.agent.net.mlp import MLPNet, MLPNetConfig
from looplab.spec.schema import Width

# Mnih et al. 2015 (Nature DQN)
NATURE_CONV = [[32, 8, 4, 0, 1], [64, 4, 2, 0, 1], [64, 3, 1, 0, 1]]


class ConvNetConfig(MLPNetConfig):
    conv_hid_layers: list[list[int]] = NATURE_CONV
    fc_hid_layers: list[Width] = [512]
    normalize: bool = False
    batch_norm: bool = True  # SLM Lab's ConvNet default: BatchNorm2d after every conv layer but the first

    @field_validator("conv_hid_layers")
    @classmethod
    def _conv(cls, v: list[list[int]]) -> list[list[int]]:
        for layer in v:
            # every entry at least 1 but padding, which may be 0
            if not 2 <= len(layer) <= 5 or any(x < (0 if i == 3 else 1) for i, x in enumerate(layer)):
                raise ValueError(f"each layer is [out_channels, kernel_size, stride, padding, dilation] (2 to 5 "
                                 f"ints, padding >= 0 and the others >= 1), got {layer}")
        return v


def conv_body(in_shape: tuple[int, ...], layers: list[list[int]], act: str, batch_norm: bool) -> tuple[nn.Sequential, int]:
    """The conv stack with a final Flatten, and the size of its output for an input of `in_shape`."""
    if len(in_shape) != 3:
        raise ValueError(f"a ConvNet needs (C, H, W) image states, got shape {in_shape}")
    mods: list[nn.Module] = []
    channels = in_shape[0]
    for i, layer in enumerate(layers):
        out, kernel, stride, padding, dilation = [*layer, *[1, 1, 0, 1][len(layer) - 1:]]
        mods.append(nn.Conv2d(channels, out, kernel, stride=stride, padding=padding, dilation=dilation))
        if batch_norm and i > 0:
            mods.append(nn.BatchNorm2d(out))
        mods.append(activation(act))
        channels = out
    mods.append(nn.Flatten())
    body = nn.Sequential(*mods)
    with torch.no_grad():
        feat = int(body.eval()(torch.zeros(1, *in_shape)).shape[-1])
    return body.train(), feat


def _fc_config(config: ConvNetConfig) -> ConvNetConfig:
    return config.model_copy(update={"hid_layers": config.fc_hid_layers, "batch_norm": False})


def _conv_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if net.config.normalize:
        x = x / 255.0
    return net.conv(x)


class _ConvBody:
    """A conv body in front of an MLP-style net (plain or dueling): images in, the net's heads out."""

    def __init__(self, config: ConvNetConfig, in_shape: tuple[int, ...], out_dims: list[int]):
        conv, feat = conv_body(in_shape, config.conv_hid_layers, config.hid_layers_activation, config.batch_norm)
        super().__init__(_fc_config(config), (feat,), out_dims)
        self.config, self.in_shape = config, in_shape
        self.conv = conv
        init_params(self.conv, config.init_fn, activation_gain(config.hid_layers_activation))

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        return super().forward(_conv_features(self, x))


@NETS.register("ConvNet")
class ConvNet(_ConvBody, MLPNet):
    """Conv body -> fully connected layers -> one linear tail per output."""

    Config = ConvNetConfig


@NETS.register("DuelingConvNet")
class DuelingConvNet(_ConvBody, DuelingMLPNet):
    """Conv body -> fully connected layers -> Q = V + A - mean(A) (Wang et al. 2016)."""

    Config = ConvNetConfig
