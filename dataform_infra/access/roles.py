"""Google's predefined roles as data: which permissions each role carries.

The table (`dataform_infra/data/roles.json`) is copied unchanged from Google's role definitions;
its `_source` line says from where and when. Nothing here guesses a permission: a role missing
from the table grants nothing as far as dfinfra can prove.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def _table() -> dict[str, frozenset[str]]:
    data = json.loads(resources.files("dataform_infra").joinpath("data/roles.json").read_text(encoding="utf-8"))
    return {role: frozenset(body["permissions"]) for role, body in data["roles"].items()}


def source() -> str:
    data = json.loads(resources.files("dataform_infra").joinpath("data/roles.json").read_text(encoding="utf-8"))
    return str(data["_source"])


def permissions(role: str) -> frozenset[str]:
    return _table().get(role, frozenset())


def known(role: str) -> bool:
    return role in _table()


def narrowest_roles(wanted: set[str] | frozenset[str]) -> list[str]:
    """Predefined roles carrying every permission in `wanted`, fewest permissions first (ties by name)."""
    fitting = [(len(perms), role) for role, perms in _table().items() if wanted <= perms]
    return [role for _, role in sorted(fitting)]
