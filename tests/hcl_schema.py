"""Check rendered HCL against the provider schema facts: types, attributes, nesting, required fields.

Independent of the renderer: it parses the HCL text back (python-hcl2) and compares it with
tests/provider_schema, so a template that invents an attribute or nests a block wrongly fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hcl2

from tests.fakegcp import constraints as provider_constraints
from tests.fakegcp.schema import VERSIONS, block_schema, type_constraints

META_ARGUMENTS = {"provider", "depends_on", "count", "for_each", "lifecycle"}
BETA_ONLY = {
    "google_dataform_repository_release_config",
    "google_dataform_repository_workflow_config",
    "google_project_service_identity",
}


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


def _is_block_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


def _config_value(value: Any) -> Any:
    """HCL value as the provider would see it at validate time: references become UNKNOWN."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"' and "${" not in value.replace("$${", ""):
            return value[1:-1]
        if value in ("true", "false"):
            return value == "true"
        return provider_constraints.UNKNOWN
    if isinstance(value, list):
        return [_config_value(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _config_value(v) for k, v in value.items() if not k.startswith("__")}
    return value


def check_block(body: Mapping[str, Any], schema: Mapping[str, Any], where: str, top: bool = True) -> list[str]:
    errors: list[str] = []
    attributes = schema.get("attributes", {})
    blocks = schema.get("block_types", {})
    dynamic: dict[str, list[Any]] = {}
    for item in body.get("dynamic", []) if isinstance(body.get("dynamic"), list) else []:
        for label, generator in item.items():
            if not label.startswith("__"):  # `dynamic "NAME"`: its `content` is NAME's block, checked as one
                dynamic.setdefault(label.strip('"'), []).extend(generator.get("content", []))
    for key, value in [*((k, v) for k, v in body.items() if k != "dynamic"), *dynamic.items()]:
        if key.startswith("__") or (top and key in META_ARGUMENTS):
            continue
        if _is_block_list(value):
            spec = blocks.get(key)
            if spec is None:
                kind = "an attribute" if key in attributes else "unknown"
                errors.append(f"{where}: block `{key}` is {kind} in the schema")
                continue
            mode = spec["nesting_mode"]
            if mode in ("single", "group") and len(value) > 1:
                errors.append(f"{where}: block `{key}` may appear once")
            if spec.get("max_items") is not None and len(value) > spec["max_items"]:
                errors.append(f"{where}: block `{key}` appears {len(value)} times, max {spec['max_items']}")
            for i, item in enumerate(value):
                errors += check_block(item, spec["block"], f"{where}.{key}[{i}]", top=False)
        else:
            spec = attributes.get(key)
            if spec is None:
                kind = "a block" if key in blocks else "unknown"
                errors.append(f"{where}: attribute `{key}` is {kind} in the schema")
            elif spec.get("computed") and not (spec.get("optional") or spec.get("required")):
                errors.append(f"{where}: attribute `{key}` is computed-only and cannot be set")
    for key, spec in attributes.items():
        if spec.get("required") and key not in body:
            errors.append(f"{where}: required attribute `{key}` is missing")
    for key, spec in blocks.items():
        if spec.get("min_items") and len(body.get(key, dynamic.get(key, []))) < spec["min_items"]:
            errors.append(f"{where}: block `{key}` is required at least {spec['min_items']} time(s)")
    return errors


def parse_module(files: Mapping[str, str]) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for text in files.values():
        for key, value in hcl2.loads(text).items():
            merged.setdefault(key, []).extend(value)
    return merged


def check_module(files: Mapping[str, str], version: str | None = None) -> list[str]:
    """Every schema problem in a rendered module against one provider version's facts (7.45.0 by default),
    as readable lines; empty when it conforms."""
    document = parse_module(files)
    errors: list[str] = []
    for kind, top in (("resource", "resource"), ("data", "data")):
        for entry in document.get(top, []):
            for type_name, named in entry.items():
                type_name = _unquote(type_name)
                for name, body in named.items():
                    where = f"{kind} {type_name}.{_unquote(name)}"
                    provider = str(body.get("provider", "google")).split(".")[0]
                    if type_name in BETA_ONLY and provider != "google-beta":
                        errors.append(f"{where}: exists only in google-beta; set provider = google-beta")
                    schema = block_schema(provider, kind, type_name, version)
                    if schema is None:
                        errors.append(f"{where}: type not in provider {provider} v{version or VERSIONS[0]}")
                        continue
                    errors += check_block(body, schema, where)
                    for v in provider_constraints.check(
                        _config_value(body), type_constraints(provider, kind, type_name, version)
                    ):
                        errors.append(f"{where}: {v.summary}: {v.detail}")
    for entry in document.get("provider", []):
        for name, body in entry.items():
            name = _unquote(name)
            schema = block_schema(name, "provider", name, version)
            errors += check_block(body, schema, f"provider {name}")
    return errors
