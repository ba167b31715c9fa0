"""Provider-side validation rules from constraints.json, applied to a resource's configuration.

The real provider runs these (SDKv2 ExactlyOneOf, AtLeastOneOf, RequiredWith, ConflictsWith,
MaxItems and MinItems, ValidateFunc regexes, lengths and enums) during `terraform validate`. Both the
offline provider and the schema tests use this one implementation. A rule is read from the entry's
structured keys and from what its `note` states in words (`MinItems 1`, `must not be "x"`, a
ValidateFunc by name): tests/fakegcp/test_constraints.py reads every note and fails on a validator one
describes that this module does not enforce. Configuration is plain data: blocks are lists of
dicts, unknown values (references at validate time) are `UNKNOWN` and never fail a value check.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterator
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
        if "ProviderConfigure" in rule.get("note", ""):
            continue  # not a schema rule: checked when the provider is configured (cloud.ProviderConfig)
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
        limit = rule.get("max_items") or _noted_count(rule, "MaxItems")
        least = _noted_count(rule, "MinItems")
        for where, value in _resolve(config, path):
            if limit and isinstance(value, list) and len(value) > limit:
                violations.append(
                    Violation(
                        where,
                        "Too many list items",
                        f'"{path}": attribute supports {limit} item maximum, but config has {len(value)} declared',
                    )
                )
            if least and isinstance(value, list) and UNKNOWN not in value and len(value) < least:
                violations.append(  # SDKv2 counts only a wholly known list
                    Violation(
                        where,
                        "Not enough list items",
                        f'"{path}": attribute requires {least} item minimum, but config has only {len(value)} declared',
                    )
                )
            if value is not UNKNOWN:
                violations += [Violation(where, "Invalid value", detail) for detail in _value_problems(rule, value)]
    return violations


def _noted_count(rule: dict[str, Any], name: str) -> int | None:
    """An item count a note states (`MinItems 1`, `MaxItems 1`): SDKv2 checks it though the printed
    schema of an attribute cannot show it."""
    found = re.search(rf"\b{name} (\d+)\b", rule.get("note", ""))
    return int(found[1]) if found else None


def _go_duration(value: str) -> bool:
    """time.ParseDuration, non-negative: `30s`, `1h30m`, `0`."""
    return value == "0" or bool(re.fullmatch(r"\+?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+", value))


def _jwt(value: str) -> bool:
    """ValidateJWT: three dot-separated, non-empty base64url (unpadded) parts."""
    parts = value.split(".")
    return len(parts) == 3 and all(re.fullmatch(r"[A-Za-z0-9_-]+", p) and len(p) % 4 != 1 for p in parts)


def _credentials(value: str) -> bool:
    """ValidateCredentials: a file that exists, or Google JSON credentials."""
    if not value:
        return False
    if os.path.exists(value):
        return True
    try:
        return isinstance(json.loads(value), dict)
    except ValueError:
        return False


def _cidr(value: str) -> bool:
    """validation.IsCIDR (net.ParseCIDR): an address with a prefix length."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


# validator text as recorded (`validator`, or a `note` naming the ValidateFunc) -> accepts(value)
VALIDATORS = {
    "ValidateCredentials": _credentials,
    "ValidateJWT": _jwt,
    "Go duration": _go_duration,
    "non-empty string": lambda value: value != "",
    "validation.IsCIDR": _cidr,
}


# value rules a `note` states in words (no structured key records them): pattern -> the problem with a
# value, or None (verify.StringNotInSlice, case-sensitive; validateProjectServiceService's '.')
NOTED_VALUE_RULES: dict[re.Pattern[str], Callable[[re.Match[str], str, str], str | None]] = {
    re.compile(r'must not be "([^"]+)"'): lambda noted, path, value: (
        f"expected {path} to not be any of [{noted[1]}], got {value}" if value == noted[1] else None
    ),
    re.compile(r"must contain an? '([^']+)'"): lambda noted, path, value: (
        None if noted[1] in value else f'"{path}" ("{value}") must contain "{noted[1]}"'
    ),
}


def _value_problems(rule: dict[str, Any], value: Any) -> list[str]:
    """What a value-level rule (ValidateFunc) says about one configured value."""
    path = rule["path"]
    if isinstance(value, dict) and "regex" in rule and "KEY" in rule.get("note", ""):
        return [
            f'"{path}": key "{key}" doesn\'t match regexp "{rule["regex"]}"'
            for key in value
            if not re.search(rule["regex"], key)
        ]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "min" in rule and value < rule["min"]:
            return [f'"{path}" ({value}) must be at least {rule["min"]}']
        return []
    if not isinstance(value, str):
        return []
    problems = []
    checked = value.rsplit("/", 1)[-1] if "ValidateDSProjectID" in rule.get("validator", "") else value
    if "regex" in rule and not re.search(rule["regex"], checked):
        problems.append(f'"{path}" ("{value}") doesn\'t match regexp "{rule["regex"]}"')
    if "regex_must_not_match" in rule and re.search(rule["regex_must_not_match"], value):
        problems.append(f'"{path}" ("{value}") is not supported')
    length = rule.get("length")
    if length and not length.get("min", 0) <= len(value.encode()) <= length.get("max", 1 << 30):
        problems.append(f'"{path}" must be {length["min"]}-{length["max"]} characters, got {len(value.encode())}')
    if "max_length" in rule and len(value) > rule["max_length"]:
        problems.append(f'"{path}" is longer than {rule["max_length"]}')
    enforced_enum = "enum" in rule and "not a schema ValidateFunc" not in rule.get("enum_source", "")
    if enforced_enum and value not in rule["enum"]:
        problems.append(f"expected {path} to be one of {rule['enum']}, got {value}")
    for pattern, problem in NOTED_VALUE_RULES.items():
        for noted in pattern.finditer(rule.get("note", "")):
            found = problem(noted, path, value)
            problems += [found] if found else []
    recorded = f"{rule.get('validator', '')} {rule.get('note', '')}"
    if "regex" not in rule and "length" not in rule:
        for name, accepts in VALIDATORS.items():
            if name in recorded and not accepts(value):
                problems.append(f'"{path}" ("{value}") is invalid: {rule.get("validator") or rule.get("note")}')
    return problems
