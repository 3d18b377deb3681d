"""Registries: a component file dropped into its folder is found on lookup, with no list to edit."""

from __future__ import annotations

import textwrap

import pytest

import looplab.agent.algorithm as algorithm_pkg
from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.net import NETS
from looplab.errors import SpecError
from looplab.registry import Registry
from tests.conftest import drop_into_package

DROPPED = textwrap.dedent('''
    """An algorithm that exists only for the discovery test."""

    from looplab.agent.algorithm.base import ALGORITHMS
    from looplab.agent.algorithm.random import Random


    @ALGORITHMS.register("DroppedIn")
    class DroppedIn(Random):
        pass
''')


@pytest.fixture
def dropped_algorithm(tmp_path, monkeypatch):
    """`dropped_in.py` in a folder on the algorithm package's path, and a registry that has not looked yet."""
    yield from drop_into_package(ALGORITHMS, algorithm_pkg, DROPPED, tmp_path, monkeypatch)


def test_an_algorithm_file_dropped_into_the_folder_is_found(dropped_algorithm):
    assert "DroppedIn" not in ALGORITHMS._items  # nothing imported it
    cls = ALGORITHMS.get("DroppedIn")
    assert cls.__name__ == "DroppedIn" and cls.__module__ == "looplab.agent.algorithm.dropped_in"
    assert "DroppedIn" in ALGORITHMS.names() and "PPO" in ALGORITHMS.names()


def test_every_shipped_module_registers_without_a_list():
    assert {"PPO", "SAC", "CrossQ", "DQN", "SIL", "PPOSIL", "Random"} <= set(ALGORITHMS.names())
    assert {"MLPNet", "ConvNet", "RecurrentNet"} <= set(NETS.names())


def test_unknown_names_have_one_error_format_and_a_key_path_of_the_callers_choice():
    with pytest.raises(SpecError) as e:
        NETS.get("MLPNett")
    assert e.value.path == "agent.net.type" and "unknown net type 'MLPNett' (did you mean 'MLPNet'?)" in str(e.value)
    with pytest.raises(SpecError) as e:
        NETS.get("MLPNett", path="agent.critic_net.type")
    assert e.value.path == "agent.critic_net.type"
    assert NETS.spec_key == "agent.net.type"  # the registry itself is not changed by the lookup


def test_a_registry_without_a_package_is_a_plain_container():
    reg = Registry("thing", "x.name")
    reg.register("a")(int)
    assert reg.get("a") is int and list(reg) == ["a"] and "b" not in reg
