"""RecurrentNet: an MLP on each time step, an RNN/LSTM/GRU over the sequence, one linear tail per output.

Input is [B, seq_len, *obs_shape]: the env gives a recurrent net each env's real history of the last
`seq_len` observations (looplab.env.transforms.history), not one state repeated as SLM Lab v5 does. The tails read
the RNN's final hidden state of its last layer (both directions' when `bidirectional`). A 1-D input
(SAC's Q-net on a flattened state and an action) is a sequence of one step.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from looplab.agent.net.base import NETS, Net, NetConfig, activation_gain, apply_tails, init_params, make_tails
from looplab.agent.net.mlp import mlp_body
from looplab.spec.schema import PositiveCount, Width


class RecurrentNetConfig(NetConfig):
    cell_type: Literal["RNN", "LSTM", "GRU"] = "GRU"
    fc_hid_layers: list[Width] = []
    rnn_hidden_size: PositiveCount = 64
    rnn_num_layers: PositiveCount = 1
    bidirectional: bool = False
    seq_len: PositiveCount = 4


@NETS.register("RecurrentNet")
class RecurrentNet(Net):
    Config = RecurrentNetConfig

    def __init__(self, config: RecurrentNetConfig, in_shape: tuple[int, ...], out_dims: list[int]):
        super().__init__(config, in_shape, out_dims)
        # [seq_len, *obs_shape] -> steps of prod(obs_shape) features; a flat input is a single step
        self.step_dim = int(np.prod(in_shape[1:])) if len(in_shape) > 1 else int(np.prod(in_shape))
        self.fc = mlp_body(self.step_dim, config.fc_hid_layers, config.hid_layers_activation, config.layer_norm,
                           config.batch_norm)
        init_params(self.fc, config.init_fn, activation_gain(config.hid_layers_activation))
        rnn_in = config.fc_hid_layers[-1] if config.fc_hid_layers else self.step_dim
        self.rnn = getattr(nn, config.cell_type)(input_size=rnn_in, hidden_size=config.rnn_hidden_size,
                                                 num_layers=config.rnn_num_layers, batch_first=True,
                                                 bidirectional=config.bidirectional)
        if config.init_fn is not None:
            init_fn = getattr(nn.init, config.init_fn if config.init_fn.endswith("_") else config.init_fn + "_")
            for name, p in self.rnn.named_parameters():
                if name.startswith("weight"):
                    init_fn(p)
                else:
                    nn.init.zeros_(p)
        self.directions = 2 if config.bidirectional else 1
        feat = config.rnn_hidden_size * self.directions
        self.tails, self.out_acts = make_tails(feat, out_dims, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        batch = x.shape[0]
        steps = x.reshape(batch, -1, self.step_dim)
        h = self.fc(steps.reshape(-1, self.step_dim)).reshape(batch, steps.shape[1], -1)
        _, h_n = self.rnn(h)
        if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
            h_n = h_n[0]
        # h_n: [num_layers * directions, B, H]; the last layer's final state of each direction
        last = h_n[-self.directions:].transpose(0, 1).reshape(batch, -1)
        return apply_tails(self.tails, self.out_acts, last)
