"""The spec reference (README.md) generated from the models, so the docs cannot drift from the code.

`python -m dataform_infra.spec.reference` prints it; a test compares it with README.md.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from dataform_infra.spec.models import Environment


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" (optional)" if type(None) in args else "")
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]  # our factories take no arguments
        return "`[]`" if value == [] else "`{}`" if value == {} else "see type"
    if field.default is None or field.default is PydanticUndefined:
        return "none"
    return f"`{str(field.default).lower() if isinstance(field.default, bool) else field.default}`"


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model reachable from `root`, in first-seen order."""
    seen: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.append(model)
        for field in model.model_fields.values():
            stack = [field.annotation]
            while stack:
                annotation = stack.pop(0)
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    visit(annotation)
                stack.extend(typing.get_args(annotation))

    visit(root)
    return seen


def spec_reference() -> str:
    lines: list[str] = []
    for model in _models(Environment):
        lines += [f"#### {model.__name__}", "", (model.__doc__ or "").strip(), ""]
        lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            key = field.alias or name
            lines.append(
                f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {field.description or ''} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(spec_reference(), end="")
