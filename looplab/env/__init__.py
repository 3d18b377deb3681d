"""Environments: Gymnasium vector envs with episode-return tracking and a frame clock."""

from looplab.env.clock import Clock
from looplab.env.make import Env, EnvInfo, probe_env

__all__ = ["Clock", "Env", "EnvInfo", "probe_env"]
