"""Networks, registered by `agent.net.type`: each module here registers its own (found on first lookup)."""

from looplab.agent.net.base import NETS, Net, NetConfig, build_net

__all__ = ["NETS", "Net", "NetConfig", "build_net"]
