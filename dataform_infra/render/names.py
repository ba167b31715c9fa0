"""Terraform resource names derived from spec names: stable, readable and unique per module."""

from __future__ import annotations

from dataform_infra.render.hcl import Ident
from dataform_infra.spec.formats import slug


class NameAllocator:
    """Hands out resource names, suffixing `_2`, `_3` ... when two spec names slug the same way."""

    def __init__(self) -> None:
        self._used: dict[str, set[str]] = {}

    def name(self, resource_type: str, *parts: str) -> Ident:
        base = "_".join(slug(p) for p in parts if p).strip("_") or "this"
        if base[0].isdigit():  # a dataset id may start with a digit (`01_staging`); an HCL name may not
            base = f"_{base}"
        used = self._used.setdefault(resource_type, set())
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}_{n}", n + 1
        used.add(candidate)
        return Ident(candidate)
