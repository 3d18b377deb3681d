"""Property: any JSON/YAML document or text given to the loader either loads or fails with one SpecError line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from looplab.errors import SpecError
from looplab.experiment.run import prepare

KEYS = st.sampled_from(["s", "agent", "env", "meta", "algorithm", "memory", "net", "name", "max_frame", "num_envs",
                        "max_session", "PPO", "CartPole-v1", "${x}", "_anchor", "type", "MLPNet"]) | st.text(max_size=8)
SCALARS = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
                      max_leaves=30)
DOCS = st.dictionaries(st.just("s") | KEYS, VALUES, max_size=3) | VALUES


def check(text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"spec{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            prepare(str(path), "s", None, None)
        except SpecError as e:
            msg = str(e)
            assert msg and "\n" not in msg and msg.startswith(str(path)), msg


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS, as_yaml=st.booleans())
def test_random_documents_load_or_fail_with_one_line(doc, as_yaml):
    if as_yaml:
        check(yaml.safe_dump(doc, allow_unicode=True), ".yaml")
    else:
        check(json.dumps(doc, allow_nan=False), ".json")


@settings(max_examples=80, deadline=None)
@given(text=st.text(max_size=200), suffix=st.sampled_from([".json", ".yaml", ".yml"]))
def test_random_text_loads_or_fails_with_one_line(text, suffix):
    check(text, suffix)


VALID = json.loads((Path(__file__).parents[1] / "data" / "bad_specs" / "traversal.json").read_text())["ok"]


def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    return out


PATHS = _paths(VALID)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(PATHS), value=VALUES, as_yaml=st.booleans())
def test_a_valid_spec_with_one_random_value_loads_or_fails_with_one_line(where, value, as_yaml):
    import copy

    spec = copy.deepcopy(VALID)
    node = spec
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    doc = {"s": spec}
    check(yaml.safe_dump(doc) if as_yaml else json.dumps(doc), ".yaml" if as_yaml else ".json")
