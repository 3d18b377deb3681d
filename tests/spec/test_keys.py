"""`looplab keys [WHAT]`: each key of a section or component with its type, default and the source's note."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import Field

from looplab.agent.keys import UnknownKeysTopic, keys_of, overview
from looplab.spec.keys import describe, field_notes, type_name
from looplab.spec.schema import NonNegCount, Open, PositiveCount, Prob, Strict
from tests.conftest import run_cli


class Inner(Strict):
    ratio: float = 0.5  # the inner note


class Probe(Strict):
    """A model to read."""

    # above the field,
    # on two lines
    count: PositiveCount
    label: str = "a#b"  # the note, after a '#' inside the default
    mode: Literal["x", "y"] | None = None
    inner: Inner | None = None
    bare: int = 3


class Passing(Open):
    name: str


def by_name(rows):
    return {r.name: r for r in rows}


def test_type_names_read_bounds_literals_unions_and_lists():
    assert type_name(PositiveCount) == "int > 0"
    assert type_name(NonNegCount | None) == "int ≥ 0 | null"
    assert type_name(Prob) == "float ≥ 0.0 ≤ 1.0"
    assert type_name(Literal["same_step", "next_step"] | None) == '"same_step" | "next_step" | null'
    assert type_name(list[str | None]) == "list of (str | null)"
    assert type_name(list[list[int]]) == "list of list of int"
    assert type_name(Annotated[float, Field(lt=1)]) == "float < 1"
    assert type_name(dict[str, float]) == "mapping"
    assert type_name(Inner | None) == "mapping (keys below) | null"


def test_notes_come_from_the_comment_beside_or_above_each_field():
    notes = field_notes(Probe)
    assert notes == {"count": "above the field, on two lines", "label": "the note, after a '#' inside the default"}
    rows = by_name(describe(Probe))
    assert list(rows) == ["count", "label", "mode", "inner", "inner.ratio", "bare"]
    assert (rows["count"].default, rows["label"].default, rows["mode"].default) == ("required", '"a#b"', "null")
    assert rows["inner.ratio"].note == "the inner note" and rows["inner.ratio"].default == "0.5"
    assert rows["bare"].note == ""


def test_an_open_section_says_its_other_keys_are_passed_on():
    rows = by_name(describe(Passing))
    assert rows["*"].note == "other keys are passed on"


def test_every_section_and_component_is_described():
    for _, names in overview():
        for name in names:
            heading, _, rows = keys_of(name)
            assert name in heading and rows, name
            for r in rows:  # a type the reader could not name would show as its repr
                assert r.type and "typing." not in r.type and "<class" not in r.type, (name, r)


def test_a_component_shows_its_own_keys_and_its_bases():
    heading, _, rows = keys_of("softactorcritic")  # any case
    assert heading == "agent.algorithm.name: SoftActorCritic"
    rows = by_name(rows)
    assert rows["gamma"].default == "0.99" and rows["gamma"].note == "the discount"  # from AlgorithmConfig
    assert rows["target_entropy"].type == '"auto" | float' and rows["target_entropy"].default == '"auto"'
    assert rows["entropy_anneal.start_ratio"].default == "0.6"
    assert rows["training_iter"].type == "int > 0 | null"
    assert "next_step" in by_name(keys_of("env")[2])["autoreset"].note


def test_an_unknown_name_is_one_error_with_the_nearest_name():
    with pytest.raises(UnknownKeysTopic, match=r"no section or component named 'sacc' \(did you mean 'SAC'\?\)"):
        keys_of("sacc")


def test_cli_prints_the_overview_a_table_and_a_one_line_error():
    listing = run_cli("keys", check=True).stdout
    assert "agent.algorithm.name:" in listing and "PrioritizedReplay" in listing and "TorchArcNet" in listing
    table = run_cli("keys", "ppo", check=True).stdout
    assert "time_horizon" in table and "vector steps per rollout" in table
    assert "[log_alpha_min, log_alpha_max]" in run_cli("keys", "SAC", check=True).stdout  # text, not markup
    bad = run_cli("keys", "nope")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no section or component named 'nope'" in bad.stderr
