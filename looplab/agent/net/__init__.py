"""Networks, registered by `agent.net.type`."""

from looplab.agent.net import conv, dueling, layers, mlp, recurrent, torcharc_net  # noqa: F401  (registers the nets)
from looplab.agent.net.base import Net, NetConfig, build_net

__all__ = ["Net", "NetConfig", "build_net"]
