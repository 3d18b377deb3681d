"""Ray for a search: a local Ray or a cluster's, and whether a trial's resources fit on one of its nodes."""

from __future__ import annotations

import logging
import os
import time

from looplab.errors import LoopLabError
from looplab.spec.schema import Spec


def start_ray(address: str | None, num_cpus: int, num_gpus: int, env: dict[str, str]) -> float:
    """Connect to a cluster (address) or start a local Ray; returns the seconds it took."""
    import ray

    t0 = time.time()
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
              "runtime_env": {"env_vars": env}}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, object_store_memory=128 * 1024**2,
                     **common)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise LoopLabError(f"cannot {'connect to Ray at ' + address if address else 'start a local Ray'}: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return time.time() - t0


def check_capacity(resources: dict[str, float], nodes: list[dict], where: str) -> None:
    """A trial that asks more than any one node has would wait forever in Ray: say so instead."""
    fits = any(n.get("CPU", 0) >= resources["cpu"] and n.get("GPU", 0) >= resources["gpu"] for n in nodes)
    if not fits:
        have = ", ".join(f"{n.get('CPU', 0):g} CPU/{n.get('GPU', 0):g} GPU" for n in nodes) or "no live node"
        raise LoopLabError(f"meta.search_resources asks {resources['cpu']:g} CPU and {resources['gpu']:g} GPU per "
                           f"trial but no node of the {where} has that ({have}); Ray would wait forever")


def local_resources(spec: Spec) -> dict[str, float]:
    """What a local Ray gets: `meta.num_cpus` or every core, and `meta.num_gpus` (at most the visible ones) or
    every visible GPU."""
    import torch

    gpus = torch.cuda.device_count()
    if spec.meta.num_gpus is not None:
        gpus = min(gpus, int(spec.meta.num_gpus))
    return {"CPU": float(spec.meta.num_cpus or os.cpu_count() or 1), "GPU": float(gpus)}


def looplab_env() -> dict[str, str]:
    """LoopLab's environment variables, for Ray workers that a cluster started elsewhere."""
    return {k: v for k, v in os.environ.items() if k.startswith("LOOPLAB_") or k == "PYTHONHASHSEED"}
