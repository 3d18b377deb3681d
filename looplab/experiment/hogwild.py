"""Hogwild trials (`meta.distributed: shared | synced`, SLM Lab's A3C and DPPO).

The trial builds the global nets once (as SLM Lab does, from a throwaway agent seeded with session 0's
seed), then runs every session at once, each attached to them (looplab.agent.net.hogwild). As in SLM
Lab, each session runs `env.max_frame / max_session` frames, so that the trial as a whole sees
`env.max_frame`; each session is one worker, with its own dataframe, metrics and graphs.

Not reproducible: the sessions update shared nets without locks, in whatever order the OS schedules
them, so a rerun with the same seeds gives other curves. Not resumable: no session's checkpoint holds
the state of the global nets at one moment (`train@` refuses such a run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.net.hogwild import GlobalNets, attach, make_global_nets
from looplab.env import Clock
from looplab.env.make import probe_env
from looplab.errors import LoopLabError
from looplab.experiment.seeds import seed_everything
from looplab.spec.schema import Spec

log = logging.getLogger("looplab")
NOT_REPRODUCIBLE = ("Hogwild (meta.distributed: {mode}): {n} session(s) update one set of nets without locks; "
                    "the run is not bit-reproducible, a rerun with the same seeds differs")


@dataclass
class Hogwild:
    """What a session of a Hogwild trial needs: the global nets and its share of the frames."""

    nets: GlobalNets
    max_frame: int

    def attach(self, algorithm: Any) -> None:
        attach(algorithm, self.nets)


def start_hogwild(spec: Spec, spec_dict: dict[str, Any], num_sessions: int, seed: int) -> Hogwild:
    """Build the trial's global nets in shared memory (on the CPU: `agent.net.gpu: auto` is read as false)."""
    for key, cfg in (("net", spec.net), ("critic_net", spec.critic_net)):
        if cfg is not None:
            cfg.gpu = False
            spec_dict["agent"][key]["gpu"] = False
    seed_everything(seed)
    info = probe_env(spec)
    algorithm = ALGORITHMS.get(spec.algorithm.name)(spec, info, Clock(num_envs=info.num_envs), seed)
    nets = make_global_nets(algorithm, spec.meta.distributed)
    log.info("Hogwild: global nets %s, shared optimizer state for %s", sorted(nets.params),
             sorted(nets.optim_states) or "none")
    log.warning(NOT_REPRODUCIBLE.format(mode=spec.meta.distributed, n=num_sessions))
    return Hogwild(nets, max(1, spec.env.max_frame // num_sessions))


def refuse_resume(spec: Spec, root: Any) -> None:
    if spec.meta.distributed:
        raise LoopLabError(f"train@{root}: a Hogwild run (meta.distributed: {spec.meta.distributed}) cannot be "
                           "resumed: its sessions trained one set of shared nets, whose state at one moment no "
                           "session checkpoint holds; start a new run")
