"""The registry type: components keyed by the spec's own words (algorithm.name, net.type, memory.name, ...).

A registry is a plain container. The package that owns a kind of component creates its registry and
names itself as the place to look: on the first lookup every module of that package is imported, so a
component registers itself by being a file in its folder, with no list to edit anywhere else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from looplab.errors import SpecError, did_you_mean

T = TypeVar("T")


class Registry:
    """A name -> component mapping with one error format for unknown names."""

    def __init__(self, kind: str, spec_key: str, package: str | None = None):
        self.kind = kind
        self.spec_key = spec_key
        self.package = package
        self._items: dict[str, Any] = {}
        self._discovered = package is None

    def register(self, *names: str) -> Callable[[T], T]:
        def deco(component: T) -> T:
            for name in names or (component.__name__,):  # type: ignore[attr-defined]
                self._items[name] = component
            return component

        return deco

    def discover(self) -> None:
        """Import every module of the owning package once, so that their registrations run."""
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)  # type: ignore[arg-type]
        for module in pkgutil.iter_modules(package.__path__, prefix=f"{self.package}."):
            importlib.import_module(module.name)

    def get(self, name: Any, path: str | None = None) -> Any:
        """The component registered as `name`; an unknown name is a SpecError at `path` (default: spec_key)."""
        self.discover()
        if not isinstance(name, str) or name not in self._items:
            raise SpecError(self.unknown(name), path=path or self.spec_key)
        return self._items[name]

    def known(self, name: str) -> str:
        """`name` if it is registered (a spec model's field validator); else ValueError with the message."""
        if name not in self:
            raise ValueError(self.unknown(name))
        return name

    def unknown(self, name: Any) -> str:
        """The message for a name not in this registry."""
        self.discover()
        return f"unknown {self.kind} '{name}'{did_you_mean(str(name), self._items)}; known: {', '.join(self.names())}"

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
