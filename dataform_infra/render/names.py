"""Terraform resource names derived from spec names: stable, readable and unique per module."""

from __future__ import annotations

import re

from dataform_infra.render.hcl import Ident


def slug(text: str) -> str:
    """`dataform-runner` -> `dataform_runner`; `group:data-eng@acme.com` -> `data_eng`."""
    text = text.split(":", 1)[-1].split("@", 1)[0].lower()
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    return text if text and not text[0].isdigit() else f"_{text}"


class NameAllocator:
    """Hands out resource names, suffixing `_2`, `_3` ... when two spec names slug the same way."""

    def __init__(self) -> None:
        self._used: dict[str, set[str]] = {}

    def name(self, resource_type: str, *parts: str) -> Ident:
        base = "_".join(slug(p) for p in parts if p).strip("_") or "this"
        used = self._used.setdefault(resource_type, set())
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}_{n}", n + 1
        used.add(candidate)
        return Ident(candidate)
