"""The keys a spec section accepts, read from its model: name, type, default and the source's comment.

`looplab keys` prints them (the lookup of sections and component names is `looplab.agent.keys`). The
notes are the comments the models' source writes beside or above each field, so the reference cannot
drift from the code that validates a spec.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from looplab.spec.catalog import table_console

_FIELD = re.compile(r"^    (\w+)\s*:(.*)$")
_COMMENT = re.compile(r"^    #\s?(.*)$")


@dataclass(frozen=True)
class Key:
    name: str  # dotted below the section: `entropy_anneal.start_ratio`
    type: str
    default: str  # "required" when the key must be given
    note: str


def describe(model: type[BaseModel], prefix: str = "") -> list[Key]:
    """One row per field of `model`, nested models' fields following their parent's row as `parent.child`."""
    notes = field_notes(model)
    rows = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        rows.append(Key(prefix + name, type_name(field.annotation, field.metadata), default_text(field),
                        notes.get(name, "")))
        for sub in nested_models(field.annotation):
            rows += describe(sub, prefix + name + ".")
    if model.model_config.get("extra") == "allow":
        rows.append(Key(prefix + "*", "any", "", "other keys are passed on"))
    return rows


def field_notes(model: type[BaseModel]) -> dict[str, str]:
    """The comment on each field's line, else the comment lines just above it, from the class that defines it."""
    notes: dict[str, str] = {}
    for cls in reversed(model.__mro__):  # a subclass's comment wins over its base's
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in lines[1:]:
            comment = _COMMENT.match(line)
            if comment:
                above.append(comment.group(1).strip())
                continue
            field = _FIELD.match(line)
            if field and field.group(1) in cls.__annotations__:
                trailing = _trailing_comment(field.group(2))
                text = trailing or " ".join(above)
                if text:
                    notes[field.group(1)] = text
            above = []
    return notes


def _trailing_comment(code: str) -> str:
    """The `# comment` ending a line of code, outside quotes."""
    quote = None
    for i, ch in enumerate(code):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return code[i + 1:].strip()
    return ""


def nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's value may be (a section inside the section)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in nested_models(arg)]


def type_name(annotation: Any, metadata: list | tuple = ()) -> str:
    """A short reading of a field's type: `int > 0 | null`, `"same_step" | "next_step"`, `list of int`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0], list(metadata) + list(annotation.__metadata__))
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " | ".join(dict.fromkeys(names)) + (" | null" if type(None) in args else "")
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    bounds = "".join(_bound(m) for m in metadata)
    if origin in (list, tuple):
        inner = " | ".join(dict.fromkeys(type_name(a) for a in args if a is not Ellipsis))
        return ("list of " + (f"({inner})" if " | " in inner else inner)) if inner else "list"
    if origin is dict or annotation is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (keys below)"
    if annotation is Any:
        return "any"
    if annotation is type(None):
        return "null"
    return (getattr(annotation, "__name__", None) or str(annotation)) + bounds


def _bound(m: Any) -> str:
    """` > 0` for a Gt(0) constraint (annotated_types' Gt, Ge, Lt, Le, one attribute each), and so on."""
    if isinstance(m, FieldInfo):  # Field(gt=0) inside Annotated
        return "".join(_bound(x) for x in m.metadata)
    for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
        if type(m).__name__.lower() == attr and hasattr(m, attr):
            return f" {sign} {getattr(m, attr)}"
    return ""


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return "(computed)"
    value = field.default
    if isinstance(value, BaseModel):
        value = value.model_dump()
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def print_keys(title: str, doc: str, rows: list[Key]) -> None:
    from rich.table import Table
    from rich.text import Text

    console = table_console()
    table = Table(title=title, title_justify="left", show_header=True, header_style="bold")
    for c in ("key", "type", "default", "note"):
        table.add_column(c, no_wrap=c == "key", overflow="fold")
    for r in rows:
        table.add_row(*(Text(c) for c in (r.name, r.type, r.default, r.note)))  # brackets are text, not markup
    console.print(table)
    if doc:
        console.print(Text(doc))
