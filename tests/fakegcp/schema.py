"""The provider schema facts (tests/provider_schema) as Python objects, loaded once."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "provider_schema"
GOOGLE = "registry.terraform.io/hashicorp/google"
GOOGLE_BETA = "registry.terraform.io/hashicorp/google-beta"
PROVIDERS = {"google": GOOGLE, "google-beta": GOOGLE_BETA}


@cache
def provider_schemas() -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / "schema.json").read_text())["provider_schemas"]


@cache
def constraints() -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / "constraints.json").read_text())


def block_schema(provider: str, kind: str, type_name: str) -> dict[str, Any] | None:
    """`kind` is "resource", "data" or "provider"; `provider` a local name or source address."""
    source = PROVIDERS.get(provider, provider)
    schemas = provider_schemas().get(source, {})
    if kind == "provider":
        return schemas["provider"]["block"]
    table = schemas.get("resource_schemas" if kind == "resource" else "data_source_schemas", {})
    entry = table.get(type_name)
    return entry["block"] if entry else None


def type_constraints(provider: str, kind: str, type_name: str) -> list[dict[str, Any]]:
    source = PROVIDERS.get(provider, provider)
    table = constraints().get(source, {}).get("data" if kind == "data" else kind, {})
    entry = table.get(type_name if kind != "provider" else provider.rsplit("/", 1)[-1], {})
    return entry.get("x_constraints", [])
