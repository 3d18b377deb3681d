"""Registries of components keyed by the spec's own words (algorithm.name, net.type, memory.name)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from looplab.errors import SpecError, did_you_mean

T = TypeVar("T")


class Registry:
    """A name -> class mapping with a clear error for unknown names."""

    def __init__(self, kind: str, spec_key: str):
        self.kind = kind
        self.spec_key = spec_key
        self._items: dict[str, Any] = {}

    def register(self, *names: str) -> Callable[[T], T]:
        def deco(cls: T) -> T:
            for name in names or (cls.__name__,):  # type: ignore[attr-defined]
                self._items[name] = cls
            return cls

        return deco

    def get(self, name: Any) -> Any:
        _load_components()
        if not isinstance(name, str) or name not in self._items:
            raise SpecError(
                f"unknown {self.kind} '{name}'{did_you_mean(str(name), self._items)}; "
                f"known: {', '.join(sorted(self._items))}",
                path=self.spec_key,
            )
        return self._items[name]

    def names(self) -> list[str]:
        _load_components()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        _load_components()
        return name in self._items


ALGORITHMS = Registry("algorithm", "agent.algorithm.name")
NETS = Registry("net type", "agent.net.type")
MEMORIES = Registry("memory", "agent.memory.name")

_loaded = False


def _load_components() -> None:
    """Import the component packages once so that their registrations run."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import looplab.agent.algorithm  # noqa: F401
    import looplab.agent.memory  # noqa: F401
    import looplab.agent.net  # noqa: F401
