"""`looplab keys [WHAT]`: which keys a spec section or a component (algorithm, net type, memory) accepts."""

from __future__ import annotations

from looplab.agent.algorithm import ALGORITHMS
from looplab.agent.memory import MEMORIES
from looplab.agent.net import NETS
from looplab.errors import LoopLabError, did_you_mean
from looplab.spec.keys import Key, describe
from looplab.spec.schema import EnvSpec, MetaSpec

SECTIONS = {"env": EnvSpec, "meta": MetaSpec}
# (the spec key that names a component, its registry)
COMPONENTS = (("agent.algorithm.name", ALGORITHMS), ("agent.net.type", NETS), ("agent.memory.name", MEMORIES))


class UnknownKeysTopic(LoopLabError):
    """`looplab keys NAME` for a name that is neither a section nor a component."""


def overview() -> list[tuple[str, list[str]]]:
    """What `looplab keys` can describe: the sections, then each kind of component's names."""
    return [("sections", sorted(SECTIONS))] + [(key, registry.names()) for key, registry in COMPONENTS]


def keys_of(what: str) -> tuple[str, str, list[Key]]:
    """(title, the model's docstring, its keys) for a section (`env`, `meta`) or a component name, any case."""
    if what.lower() in SECTIONS:
        model = SECTIONS[what.lower()]
        return what.lower(), _doc(model), describe(model)
    everything: dict[str, tuple[str, type]] = {}
    for key, registry in COMPONENTS:
        for name in registry.names():
            everything[name] = (key, registry.get(name).Config)
    match = next((n for n in everything if n.lower() == what.lower()), None)
    if match is None:
        hint = did_you_mean(what, [*SECTIONS, *everything], ignore_case=True)
        raise UnknownKeysTopic(f"no section or component named '{what}'{hint}; `looplab keys` lists them")
    key, model = everything[match]
    return f"{key}: {match}", _doc(model), describe(model)


def _doc(model: type) -> str:
    return (model.__doc__ or "").strip().split("\n\n")[0]
