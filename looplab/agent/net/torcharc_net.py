"""TorchArcNet: a body from SLM Lab's `arc` graph spec (built by the torcharc package), plus linear tails.

Lazy layers in the arc are materialized by a dry forward on the state shape, then tails are added
per output as MLPNet does. `normalize` divides inputs by 255 (images).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torcharc
import yaml
from pydantic import field_validator

from looplab.agent.net import layers  # noqa: F401  (registers the extra layers in torch.nn)
from looplab.agent.net.base import NETS, Net, NetConfig, activation_gain, apply_tails, init_params, make_tails
from looplab.spec.schema import Width


def _check_arc(v: Any) -> Any:
    if v is not None:
        try:
            torcharc.Spec(**v)
        except Exception as e:  # torcharc raises pydantic and plain errors alike
            raise ValueError(f"invalid arc: {str(e).splitlines()[0]}") from None
    return v


class TorchArcNetConfig(NetConfig):
    arc: dict[str, Any] | None = None
    actor_arc: dict[str, Any] | None = None
    critic_arc: dict[str, Any] | None = None
    arc_file: str | None = None
    normalize: bool = False
    hid_layers: list[Width] | None = None

    @field_validator("arc", "actor_arc", "critic_arc")
    @classmethod
    def _arc(cls, v: Any) -> Any:
        return _check_arc(v)


@NETS.register("TorchArcNet")
class TorchArcNet(Net):
    Config = TorchArcNetConfig

    def __init__(self, config: TorchArcNetConfig, in_shape: tuple[int, ...], out_dims: list[int]):
        super().__init__(config, in_shape, out_dims)
        arc = config.arc
        if arc is None and config.arc_file is not None:
            arc = yaml.safe_load(Path(config.arc_file).read_text())
        if arc is None:
            raise ValueError("TorchArcNet needs `arc` or `arc_file`")
        self.normalize = config.normalize
        self.body = torcharc.build(arc)
        was = self.body.training
        self.body.eval()  # the dry forward must not move running statistics
        with torch.no_grad():
            feat = self._features(torch.zeros(2, *in_shape))
        self.body.train(was)
        init_params(self.body, config.init_fn, activation_gain(config.hid_layers_activation))
        self.tails, self.out_acts = make_tails(feat.shape[-1], out_dims, config)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = x / 255.0
        h = self.body(x)
        return h.flatten(1) if h.dim() > 2 else h

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        return apply_tails(self.tails, self.out_acts, self._features(x.float() if x.dtype == torch.uint8 else x))
