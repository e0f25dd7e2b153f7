"""The configuration reference (docs/configuration.md), generated from the pydantic models (one place says what a
key means).

    python -m infra.config.reference            # print it
    python -m infra.config.reference --write    # replace docs/configuration.md's section between its markers

A test fails when the doc's section and this rendering differ, so the reference cannot drift from the models.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from infra.generated_section import GeneratedSection

from .models import StackConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
SECTION = GeneratedSection(DOC, START, END)
CONSTRAINTS = {"ge": ">= {}", "gt": "> {}", "le": "<= {}", "lt": "< {}", "min_length": "at least {} long",
               "max_length": "at most {} long", "pattern": "matches `{}`"}


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's type refers to, in order (through lists, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for argument in typing.get_args(annotation):
        found += [m for m in _models(argument) if m not in found]
    return found


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(arguments[0])
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in arguments)
    if origin in (Union, types.UnionType):
        shown = [_type(a) for a in arguments if a is not type(None)]
        return " \\| ".join(shown) + (" (optional)" if type(None) in arguments else "")
    if origin is list:
        return f"list of {_type(arguments[0])}"
    if origin is dict:
        return f"map {_type(arguments[0])} to {_type(arguments[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
        return "(empty)" if value in ([], {}) else "(see its section)"
    if field.default is PydanticUndefined:
        return "**required**"
    if isinstance(field.default, BaseModel):
        return "`" + ", ".join(f"{k}: {v}" for k, v in field.default.model_dump().items()) + "`"
    return "" if field.default is None else f"`{field.default}`"


def _constraints(field: FieldInfo) -> str:
    shown = []
    for item in field.metadata:
        for name, form in CONSTRAINTS.items():
            value = getattr(item, name, None)
            if value is not None:
                shown.append(form.format(value))
    return "; ".join(shown)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    sections, queue, seen = [], [StackConfig], set()
    while queue:
        model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        title = "mlserve: (the stack file's namespace)" if model is StackConfig else model.__name__
        lines = [f"### {title}", ""]
        doc = (model.__doc__ or "").strip().splitlines()
        if doc and model.__module__.endswith("models"):
            lines += [doc[0], ""]
        lines += ["| key | type | default | meaning | limits |", "| --- | --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            key = f"`mlserve:{name}`" if model is StackConfig else f"`{name}`"
            lines.append(f"| {key} | {_type(field.annotation)} | {_default(field)} | "
                         f"{_cell(field.description or '')} | {_cell(_constraints(field))} |")
            queue += [m for m in _models(field.annotation) if m not in seen]
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def doc_section(text: str) -> str:
    return SECTION.read(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.config.reference", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"replace the reference in {DOC.name}")
    args = parser.parse_args(argv)
    reference = render()
    if not args.write:
        sys.stdout.write(reference)
        return 0
    SECTION.write(reference)
    print(f"wrote the configuration reference into {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
