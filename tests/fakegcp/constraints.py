"""Provider-side validation rules from constraints.json, applied to a resource's configuration.

The real provider runs these (SDKv2 ExactlyOneOf, AtLeastOneOf, RequiredWith, ConflictsWith,
ValidateFunc regexes, lengths and enums) during `terraform validate`. Both the offline provider and
the schema tests use this one implementation. Configuration is plain data: blocks are lists of
dicts, unknown values (references at validate time) are `UNKNOWN` and never fail a value check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class _Unknown:
    """A value Terraform will only know after apply. A singleton: copies are itself."""

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __copy__(self) -> _Unknown:
        return self

    def __deepcopy__(self, memo: dict) -> _Unknown:
        return self


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class Violation:
    path: tuple[str | int, ...]
    summary: str
    detail: str


def _resolve(config: Any, path: str) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Values at a Go-style path (`block.0.field`; `.0.` stands for every element) that are set."""
    parts = path.split(".")

    def walk(node: Any, index: int, trail: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
        if index == len(parts):
            yield trail, node
            return
        part = parts[index]
        if part.isdigit() or part == "*":
            if isinstance(node, list):
                for i, item in enumerate(node):
                    yield from walk(item, index + 1, (*trail, i))
            return
        if isinstance(node, dict) and node.get(part) is not None:
            yield from walk(node[part], index + 1, (*trail, part))

    yield from walk(config, 0, ())


def _is_set(value: Any) -> bool:
    return value is not None and value != [] and value != ""


def _parent_exists(config: Any, path: str) -> bool:
    """SDKv2 checks a nested field's rules only inside block elements that exist."""
    if "." not in path:
        return True
    parent = path.rsplit(".", 1)[0]
    return any(value is not None for _, value in _resolve(config, parent))


def _set_in_same_element(config: Any, paths: list[str]) -> list[str]:
    return [p for p in paths if any(_is_set(v) for _, v in _resolve(config, p))]


def check(config: dict[str, Any], rules: list[dict[str, Any]]) -> list[Violation]:
    violations: list[Violation] = []
    done_groups: set[tuple[str, ...]] = set()
    for rule in rules:
        path = rule["path"]
        attr_path = tuple(int(p) if p.isdigit() else p for p in path.split("."))
        for key, label in (("exactly_one_of", "exactly one of"), ("at_least_one_of", "at least one of")):
            group = tuple(rule.get(key, ()))
            if not group or (key, *group) in done_groups or not _parent_exists(config, path):
                continue
            done_groups.add((key, *group))
            present = _set_in_same_element(config, list(group))
            wrong = len(present) != 1 if key == "exactly_one_of" else not present
            if wrong:
                names = ", ".join(f"`{g}`" for g in group)
                what = "more than one" if present else "none"
                violations.append(
                    Violation(
                        attr_path[:-1] if len(attr_path) > 1 else attr_path,
                        "Invalid combination of arguments",
                        f'"{path}": {label} {names} must be specified ({what} given)',
                    )
                )
        for other in rule.get("conflicts_with", []):
            if _set_in_same_element(config, [path]) and _set_in_same_element(config, [other]):
                violations.append(
                    Violation(attr_path, "Conflicting configuration arguments", f'"{path}": conflicts with {other}')
                )
        for needed in rule.get("required_with", []):
            if _set_in_same_element(config, [path]) and not _set_in_same_element(config, [needed]):
                violations.append(
                    Violation(
                        attr_path, "Missing required argument", f'"{path}": all of `{path},{needed}` must be specified'
                    )
                )
        for where, value in _resolve(config, path):
            if value is UNKNOWN or not isinstance(value, str):
                continue
            if "regex" in rule and not re.search(rule["regex"], value):
                violations.append(
                    Violation(where, "Invalid value", f'"{path}" ("{value}") doesn\'t match regexp "{rule["regex"]}"')
                )
            if "regex_must_not_match" in rule and re.search(rule["regex_must_not_match"], value):
                violations.append(Violation(where, "Invalid value", f'"{path}" ("{value}") is not supported'))
            length = rule.get("length")
            if length and not length.get("min", 0) <= len(value) <= length.get("max", 1 << 30):
                violations.append(
                    Violation(
                        where,
                        "Invalid value",
                        f'"{path}" must be {length["min"]}-{length["max"]} characters, got {len(value)}',
                    )
                )
            if "max_length" in rule and len(value) > rule["max_length"]:
                violations.append(Violation(where, "Invalid value", f'"{path}" is longer than {rule["max_length"]}'))
            enforced_enum = "enum" in rule and "not a schema ValidateFunc" not in rule.get("enum_source", "")
            if enforced_enum and value not in rule["enum"]:
                violations.append(
                    Violation(where, "Invalid value", f"expected {path} to be one of {rule['enum']}, got {value}")
                )
    return violations
