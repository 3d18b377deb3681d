"""The `search` section: parsing (nested and dotted), each function's translation, grids, errors."""

from __future__ import annotations

import json

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from looplab.agent.validate import validate_spec
from looplab.errors import SpecError
from looplab.spec.search import apply_values, check_search, parse_search
from tests.conftest import ROOT

DEMO = json.loads((ROOT / "looplab" / "spec" / "library" / "demo.json").read_text())["ppo_cartpole"]


def one(fn: str, args: list):
    return parse_search({f"agent.algorithm.lam__{fn}": args}).keys[0]


def test_nested_and_dotted_parse_alike():
    nested = parse_search({"agent": {"algorithm": {"lam__uniform": [0.8, 0.99]},
                                     "net": {"optim_spec": {"lr__loguniform": [1e-4, 1e-2]}}}})
    dotted = parse_search({"agent.algorithm.lam__uniform": [0.8, 0.99],
                           "agent.net": {"optim_spec.lr__loguniform": [1e-4, 1e-2]}})
    assert [(k.path, k.fn, k.args) for k in nested.keys] == [(k.path, k.fn, k.args) for k in dotted.keys] == [
        ("agent.algorithm.lam", "uniform", (0.8, 0.99)), ("agent.net.optim_spec.lr", "loguniform", (1e-4, 1e-2))]
    assert dotted.keys[1].source == "agent.net.optim_spec.lr__loguniform"


@pytest.mark.parametrize("fn,args,dist,raw,value", [
    ("choice", [16, 32], CategoricalDistribution([16, 32]), 32, 32),
    ("choice", [[64, 64], [32]], CategoricalDistribution([0, 1]), 1, [32]),  # non-scalars go by index
    ("uniform", [0.5, 1.0], FloatDistribution(0.5, 1.0), 0.75, 0.75),
    ("quniform", [0.0, 1.0, 0.25], FloatDistribution(0.0, 1.0), 0.3, 0.25),
    ("loguniform", [1e-4, 1e-2], FloatDistribution(1e-4, 1e-2, log=True), 1e-3, 1e-3),
    ("qloguniform", [1e-4, 1e-2, 1e-4], FloatDistribution(1e-4, 1e-2, log=True), 0.00123, 0.0012),
    ("randn", [1.0, 2.0], FloatDistribution(1e-6, 1 - 1e-6), 0.5, 1.0),
    ("qrandn", [0.0, 1.0, 0.5], FloatDistribution(1e-6, 1 - 1e-6), 0.8413447, 1.0),  # Phi(1) -> 1.0
    ("randint", [1, 5], IntDistribution(1, 4), 4, 4),  # Ray's randint excludes high
    ("qrandint", [8, 64, 8], IntDistribution(8, 64, step=8), 64, 64),  # Ray's qrandint includes high
    ("lograndint", [1, 100], IntDistribution(1, 99, log=True), 10, 10),
    ("qlograndint", [8, 256, 8], IntDistribution(8, 256, log=True), 21, 24),
])
def test_each_function_translates(fn, args, dist, raw, value):
    key = one(fn, args)
    assert key.distribution() == dist
    out = key.decode(raw)
    assert out == pytest.approx(value, abs=1e-9) if isinstance(value, float) else out == value
    assert type(out) is type(value)


def test_randn_is_normal_through_its_quantile():
    key = one("randn", [1.0, 2.0])
    assert key.decode(0.975) == pytest.approx(1.0 + 2.0 * 1.959964, abs=1e-5)
    assert key.decode(0.025) == pytest.approx(1.0 - 2.0 * 1.959964, abs=1e-5)


def test_grid_crossed_with_sampled_keys():
    space = parse_search({"agent.algorithm.lam__grid_search": [0.9, 0.95],
                          "agent.algorithm.training_epoch__grid_search": [4, 8, 16],
                          "agent.net.optim_spec.lr__loguniform": [1e-4, 1e-2]})
    points = space.grid_points()
    assert len(points) == 6
    assert points[0] == {"agent.algorithm.lam": 0.9, "agent.algorithm.training_epoch": 4}
    assert points[-1] == {"agent.algorithm.lam": 0.95, "agent.algorithm.training_epoch": 16}
    assert list(space.optuna_space()) == ["agent.net.optim_spec.lr"]
    assert parse_search({"agent.algorithm.lam__uniform": [0.8, 0.9]}).grid_points() == [{}]


def test_apply_values_sets_paths_and_drops_search():
    spec = {**DEMO, "search": {"agent.algorithm.lam__uniform": [0.8, 0.9]}}
    out = apply_values(spec, {"agent.algorithm.lam": 0.85, "agent.net.hid_layers": [32]})
    assert out["agent"]["algorithm"]["lam"] == 0.85 and out["agent"]["net"]["hid_layers"] == [32]
    assert "search" not in out and spec["agent"]["algorithm"]["lam"] == 0.95  # the input is not changed


@pytest.mark.parametrize("search,where,words", [
    ({"agent.algorithm.lam__unifrom": [0, 1]}, "search.agent.algorithm.lam__unifrom", "did you mean 'uniform'"),
    ({"agent.algorithm.lam__uniform": [0.9, 0.8]}, "search.agent.algorithm.lam__uniform", "low < high"),
    ({"agent.algorithm.lam__uniform": [0.8]}, "search.agent.algorithm.lam__uniform", "takes 2 arguments"),
    ({"agent.algorithm.lam__uniform": 0.8}, "search.agent.algorithm.lam__uniform", "must be a list"),
    ({"agent.net.optim_spec.lr__loguniform": [0, 1e-2]}, "search.agent.net.optim_spec.lr__loguniform", "low > 0"),
    ({"agent.algorithm.time_horizon__randint": [64, 64]}, "search.agent.algorithm.time_horizon__randint",
     "high is excluded"),
    ({"agent.algorithm.time_horizon__qrandint": [64, 128, 0.5]}, "search.agent.algorithm.time_horizon__qrandint",
     "whole numbers"),
    ({"agent.algorithm.lam__choice": []}, "search.agent.algorithm.lam__choice", "non-empty"),
    ({"agent": {"algorithm": {"lam": 0.9}}}, "search.agent.algorithm.lam", "key__fn"),
    ({"agent.algorithm.lam__choice": [0.9], "agent": {"algorithm": {"lam__uniform": [0.8, 0.9]}}},
     "search.agent.algorithm.lam__uniform", "searched twice"),
])
def test_bad_search_sections_are_clear_errors(search, where, words):
    with pytest.raises(SpecError) as e:
        parse_search(search)
    assert e.value.path == where
    assert words in e.value.message


def test_check_search_validates_the_spec_at_each_value():
    spec = {**DEMO, "name": "ppo_cartpole"}
    with pytest.raises(SpecError) as e:
        check_search({**spec, "search": {"agent.algorithm.lamm__uniform": [0.8, 0.9]}}, validate_spec, "f.json", "ppo_cartpole")
    assert e.value.path == "search.agent.algorithm.lamm__uniform"
    assert "unknown key" in str(e.value) and "did you mean 'lam'" in str(e.value)
    assert str(e.value).startswith("f.json: spec 'ppo_cartpole': search.agent.algorithm.lamm__uniform:")
    with pytest.raises(SpecError) as e:  # a bad value among the choices, not the first one
        check_search({**spec, "search": {"meta.max_session__choice": [2, 0]}}, validate_spec, "f.json", "ppo_cartpole")
    assert e.value.path == "search.meta.max_session__choice" and "with meta.max_session=0" in str(e.value)
    with pytest.raises(SpecError) as e:
        check_search({**spec, "search": {"env.name.x__uniform": [0.1, 0.2]}}, validate_spec, "f.json", "ppo_cartpole")
    assert e.value.path == "search.env.name.x__uniform" and "not a mapping" in str(e.value)
    space = check_search({**spec, "search": {"agent.algorithm.lam__uniform": [0.8, 0.99]}}, validate_spec, "f.json", "ppo_cartpole")
    assert space.paths == ["agent.algorithm.lam"]
