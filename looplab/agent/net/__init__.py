"""Networks, registered by `agent.net.type`."""

from looplab.agent.net import mlp  # noqa: F401  (registers MLPNet)
from looplab.agent.net.base import Net, NetConfig, build_net

__all__ = ["Net", "NetConfig", "build_net"]
