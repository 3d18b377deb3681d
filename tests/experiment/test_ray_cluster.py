"""What a local Ray is given: meta.num_cpus and meta.num_gpus, or the machine's own."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from looplab.errors import LoopLabError, SpecError
from looplab.experiment.ray_cluster import check_capacity, local_resources
from looplab.spec.schema import MetaSpec, validate_model


def spec(**meta: int) -> SimpleNamespace:
    return SimpleNamespace(meta=SimpleNamespace(**{"num_cpus": None, "num_gpus": None, **meta}))


def test_local_ray_gets_the_meta_counts_or_the_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert local_resources(spec()) == {"CPU": float(os.cpu_count() or 1), "GPU": 2.0}
    assert local_resources(spec(num_cpus=3, num_gpus=1)) == {"CPU": 3.0, "GPU": 1.0}
    assert local_resources(spec(num_gpus=4))["GPU"] == 2.0  # never more than the visible ones
    assert local_resources(spec(num_gpus=0))["GPU"] == 0.0


def test_num_gpus_is_a_whole_number():
    assert validate_model(MetaSpec, {"max_session": 1, "num_gpus": 1}).num_gpus == 1
    with pytest.raises(SpecError, match="num_gpus"):
        validate_model(MetaSpec, {"max_session": 1, "num_gpus": 0.5}, "meta")


def test_a_trial_larger_than_every_node_is_refused():
    with pytest.raises(LoopLabError, match="Ray would wait forever"):
        check_capacity({"cpu": 4.0, "gpu": 0.0}, [{"CPU": 2.0}], "local Ray")
