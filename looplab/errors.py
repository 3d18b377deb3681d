"""User-facing errors: each is printed as one line on stderr and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LoopLabError(Exception):
    """An error caused by user input (spec, command line, run folder), not by a bug."""

    exit_code = 2


class SpecError(LoopLabError):
    """A spec that cannot be loaded or validated, located by file, spec name and key path."""

    def __init__(self, message: str, file: str | None = None, spec: str | None = None, path: str | None = None):
        self.message = message
        self.file = file
        self.spec = spec
        self.path = path
        super().__init__(str(self))

    def located(self, file: str | None = None, spec: str | None = None) -> SpecError:
        """Fill in the file and spec name if the raiser did not know them."""
        self.file = self.file or file
        self.spec = self.spec or spec
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.spec:
            parts.append(f"spec '{self.spec}'")
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts).replace("\n", " ")


def did_you_mean(word: str, choices: Iterable[str], ignore_case: bool = False) -> str:
    """A ' (did you mean ...?)' hint, or '' when nothing is close; the choice is named as given."""
    fold = (lambda x: x.lower()) if ignore_case else (lambda x: x)
    by_key = {fold(str(c)): str(c) for c in choices}
    close = difflib.get_close_matches(fold(str(word)), list(by_key), n=1, cutoff=0.6)
    return f" (did you mean '{by_key[close[0]]}'?)" if close else ""
