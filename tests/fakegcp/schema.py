"""The provider schema facts (tests/provider_schema) as Python objects, loaded once."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "provider_schema"
GOOGLE = "registry.terraform.io/hashicorp/google"
GOOGLE_BETA = "registry.terraform.io/hashicorp/google-beta"
PROVIDERS = {"google": GOOGLE, "google-beta": GOOGLE_BETA}
# The provider versions whose facts are here: 7.45.0 at the top, each later one in its own directory.
VERSIONS = ("7.45.0", "8.7.0")
VERSION_VARIABLE = "FAKEGCP_PROVIDER_VERSION"  # set by the mirror's launcher of each version


def served_version() -> str:
    """The version this process serves (the offline provider), or checks against (7.45.0 by default)."""
    version = os.environ.get(VERSION_VARIABLE, VERSIONS[0])
    if version not in VERSIONS:
        raise ValueError(f"no provider facts for version {version} (have: {', '.join(VERSIONS)})")
    return version


def _facts(version: str | None) -> Path:
    version = version or served_version()
    return SCHEMA_DIR if version == VERSIONS[0] else SCHEMA_DIR / version


def provider_schemas(version: str | None = None) -> dict[str, Any]:
    """The schemas of `version`, or of the version this process serves."""
    return _load(version or served_version(), "schema.json")["provider_schemas"]


def constraints(version: str | None = None) -> dict[str, Any]:
    return _load(version or served_version(), "constraints.json")


@cache
def _load(version: str, name: str) -> dict[str, Any]:
    return json.loads((_facts(version) / name).read_text())


def block_schema(provider: str, kind: str, type_name: str, version: str | None = None) -> dict[str, Any] | None:
    """`kind` is "resource", "data" or "provider"; `provider` a local name or source address."""
    source = PROVIDERS.get(provider, provider)
    schemas = provider_schemas(version).get(source, {})
    if kind == "provider":
        return schemas["provider"]["block"]
    table = schemas.get("resource_schemas" if kind == "resource" else "data_source_schemas", {})
    entry = table.get(type_name)
    return entry["block"] if entry else None


def type_constraints(provider: str, kind: str, type_name: str, version: str | None = None) -> list[dict[str, Any]]:
    source = PROVIDERS.get(provider, provider)
    table = constraints(version).get(source, {}).get("data" if kind == "data" else kind, {})
    entry = table.get(type_name if kind != "provider" else provider.rsplit("/", 1)[-1], {})
    return entry.get("x_constraints", [])
