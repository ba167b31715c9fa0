"""The offline `hashicorp/google` / `hashicorp/google-beta` provider: tfplugin6 over go-plugin.

Run as `python -m tests.fakegcp.provider google|google-beta` by the launcher script that the
filesystem mirror installs (see `tests/fakegcp/mirror.py`). It serves exactly the schemas of one version
in tests/provider_schema and keeps every object in the shared store (`FAKEGCP_STORE`).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from tests.fakegcp import constraints as provider_constraints
from tests.fakegcp import values
from tests.fakegcp.cloud import Cloud
from tests.fakegcp.engine import CloudError, ProviderConfig, ResourceType
from tests.fakegcp.protocol import pb, services
from tests.fakegcp.schema import PROVIDERS, provider_schemas, type_constraints
from tests.fakegcp.store import Store
from tests.fakegcp.types import resource_type

_NESTING = {"single": 1, "list": 2, "set": 3, "map": 4, "group": 5}


def _schema_block(block: dict[str, Any]) -> Any:
    message = pb.Schema.Block(version=0)
    for name, spec in sorted(block.get("attributes", {}).items()):
        message.attributes.append(
            pb.Schema.Attribute(
                name=name,
                type=json.dumps(spec["type"]).encode(),
                required=bool(spec.get("required")),
                optional=bool(spec.get("optional")),
                computed=bool(spec.get("computed")),
                sensitive=bool(spec.get("sensitive")),
                deprecated=bool(spec.get("deprecated")),
                write_only=bool(spec.get("write_only")),
            )
        )
    for name, spec in sorted(block.get("block_types", {}).items()):
        message.block_types.append(
            pb.Schema.NestedBlock(
                type_name=name,
                block=_schema_block(spec["block"]),
                nesting=_NESTING[spec["nesting_mode"]],
                min_items=spec.get("min_items", 0),
                max_items=spec.get("max_items", 0),
            )
        )
    return message


def _schema(entry: dict[str, Any]) -> Any:
    return pb.Schema(version=entry.get("version", 0), block=_schema_block(entry["block"]))


def _path(steps: tuple[str | int, ...]) -> Any:
    path = pb.AttributePath()
    for step in steps:
        if isinstance(step, int):
            path.steps.append(pb.AttributePath.Step(element_key_int=step))
        else:
            path.steps.append(pb.AttributePath.Step(attribute_name=step))
    return path


def _write_only(value: Any, block: dict[str, Any], found: dict[str, Any], prefix: str = "") -> None:
    """Null every write-only attribute of `value` in place (Terraform refuses a plan or state holding one),
    collecting what the configuration set in `found` by dotted path: only the API receives them."""
    if not isinstance(value, dict):
        return
    for name, spec in block.get("attributes", {}).items():
        if spec.get("write_only"):
            if value.get(name) is not None:
                found[prefix + name] = value[name]
            value[name] = None
    for name, nested in block.get("block_types", {}).items():
        items = value.get(name)
        for i, item in enumerate([items] if isinstance(items, dict) else (items or [])):
            _write_only(item, nested["block"], found, f"{prefix}{name}.{i}.")


def _error(summary: str, detail: str = "", steps: tuple[str | int, ...] = ()) -> Any:
    diagnostic = pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary, detail=detail)
    if steps:
        diagnostic.attribute.CopyFrom(_path(steps))
    return diagnostic


def _guarded(response_type: Callable[..., Any]):
    """Any exception becomes an error diagnostic, as a provider crash would not help anyone debug."""

    def wrap(method):
        def handler(self, request, context):
            try:
                return method(self, request, context)
            except CloudError as exc:
                return response_type(diagnostics=[_error(exc.summary, exc.detail, exc.path)])
            except Exception as exc:  # reported to terraform with the traceback, never a crash
                return response_type(diagnostics=[_error(f"offline provider bug: {exc}", traceback.format_exc())])

        return handler

    return wrap


class Provider(services.ProviderServicer):
    def __init__(self, local_name: str):
        self.local_name = local_name
        self.source = PROVIDERS[local_name]
        self.schemas = provider_schemas()[self.source]
        self.config = ProviderConfig()
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._cloud: Cloud | None = None

    @property
    def cloud(self) -> Cloud:
        if self._cloud is None:
            self._cloud = Cloud(Store())
        return self._cloud

    def type(self, kind: str, name: str) -> ResourceType:
        key = (kind, name)
        if key not in self._types:
            self._types[key] = resource_type(self.source, kind, name)
        return self._types[key]

    # --- schema -------------------------------------------------------------------------

    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(
            server_capabilities=pb.ServerCapabilities(plan_destroy=True),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=t) for t in sorted(self.schemas["resource_schemas"])],
            data_sources=[
                pb.GetMetadata.DataSourceMetadata(type_name=t)
                for t in sorted(self.schemas.get("data_source_schemas", {}))
            ],
        )

    def GetProviderSchema(self, request, context):
        response = pb.GetProviderSchema.Response(
            provider=_schema(self.schemas["provider"]),
            server_capabilities=pb.ServerCapabilities(plan_destroy=True),
        )
        for name, entry in self.schemas["resource_schemas"].items():
            response.resource_schemas[name].CopyFrom(_schema(entry))
        for name, entry in self.schemas.get("data_source_schemas", {}).items():
            response.data_source_schemas[name].CopyFrom(_schema(entry))
        return response

    # --- validation ---------------------------------------------------------------------

    def _validate(self, kind: str, name: str, raw: bytes) -> list[Any]:
        config = values.decode(raw)
        rules = type_constraints(self.local_name, kind, name)
        return [_error(v.summary, v.detail, v.path) for v in provider_constraints.check(config or {}, rules)]

    @_guarded(pb.ValidateProviderConfig.Response)
    def ValidateProviderConfig(self, request, context):
        return pb.ValidateProviderConfig.Response(
            diagnostics=self._validate("provider", self.local_name, request.config.msgpack)
        )

    @_guarded(pb.ValidateResourceConfig.Response)
    def ValidateResourceConfig(self, request, context):
        return pb.ValidateResourceConfig.Response(
            diagnostics=self._validate("resource", request.type_name, request.config.msgpack)
        )

    @_guarded(pb.ValidateDataResourceConfig.Response)
    def ValidateDataResourceConfig(self, request, context):
        return pb.ValidateDataResourceConfig.Response(
            diagnostics=self._validate("data", request.type_name, request.config.msgpack)
        )

    @_guarded(pb.ConfigureProvider.Response)
    def ConfigureProvider(self, request, context):
        self.config = ProviderConfig.from_config(values.decode(request.config.msgpack))
        self.cloud.defaults = self.config
        return pb.ConfigureProvider.Response()

    @_guarded(pb.UpgradeResourceState.Response)
    def UpgradeResourceState(self, request, context):
        rtype = self.type("resource", request.type_name)
        state = values.normalise(values.decode_json(request.raw_state.json), rtype.block)
        return pb.UpgradeResourceState.Response(
            upgraded_state=pb.DynamicValue(msgpack=values.encode(state, rtype.block))
        )

    # --- lifecycle ----------------------------------------------------------------------

    @_guarded(pb.PlanResourceChange.Response)
    def PlanResourceChange(self, request, context):
        rtype = self.type("resource", request.type_name)
        prior = values.decode(request.prior_state.msgpack)
        proposed = values.decode(request.proposed_new_state.msgpack)
        config = values.decode(request.config.msgpack)
        planned, replace = rtype.plan(prior, proposed, config, self.config)
        _write_only(planned, rtype.block, {})
        return pb.PlanResourceChange.Response(
            planned_state=pb.DynamicValue(msgpack=values.encode(planned, rtype.block)),
            requires_replace=[_path(path) for path in replace],
            legacy_type_system=True,  # like every SDKv2 provider, hashicorp/google included
        )

    @_guarded(pb.ApplyResourceChange.Response)
    def ApplyResourceChange(self, request, context):
        if os.environ.get("FAKEGCP_APPLY_DELAY"):  # real APIs take time; tests interrupt applies mid-way
            time.sleep(float(os.environ["FAKEGCP_APPLY_DELAY"]))
        rtype = self.type("resource", request.type_name)
        prior = values.decode(request.prior_state.msgpack)
        planned = values.decode(request.planned_state.msgpack)
        if planned is None:
            rtype.delete(prior, self.cloud)
            new_state = None
        elif prior is None:
            new_state = rtype.create(planned, self.cloud)
        else:
            new_state = rtype.update(prior, planned, self.cloud)
        if new_state is not None:
            sent: dict[str, Any] = {}
            _write_only(values.decode(request.config.msgpack), rtype.block, sent)
            rtype.receive_write_only(new_state, sent, self.cloud)
            _write_only(new_state, rtype.block, {})
        return pb.ApplyResourceChange.Response(
            new_state=pb.DynamicValue(msgpack=values.encode(new_state, rtype.block)), legacy_type_system=True
        )

    @_guarded(pb.ReadResource.Response)
    def ReadResource(self, request, context):
        rtype = self.type("resource", request.type_name)
        current = values.decode(request.current_state.msgpack)
        new_state = rtype.read(current, self.cloud) if current else None
        return pb.ReadResource.Response(
            new_state=pb.DynamicValue(msgpack=values.encode(values.normalise(new_state, rtype.block), rtype.block))
        )

    @_guarded(pb.ImportResourceState.Response)
    def ImportResourceState(self, request, context):
        rtype = self.type("resource", request.type_name)
        state = rtype.import_state(request.id, self.config, self.cloud)
        imported = pb.ImportResourceState.ImportedResource(
            type_name=request.type_name, state=pb.DynamicValue(msgpack=values.encode(state, rtype.block))
        )
        return pb.ImportResourceState.Response(imported_resources=[imported])

    @_guarded(pb.ReadDataSource.Response)
    def ReadDataSource(self, request, context):
        rtype = self.type("data", request.type_name)
        state = rtype.read_data(values.decode(request.config.msgpack) or {}, self.config, self.cloud)
        return pb.ReadDataSource.Response(state=pb.DynamicValue(msgpack=values.encode(state, rtype.block)))

    def StopProvider(self, request, context):
        return pb.StopProvider.Response()


def main(argv: list[str] | None = None) -> None:
    from tests.fakegcp.server import serve

    args = argv if argv is not None else sys.argv[1:]
    if not args or args[0] not in PROVIDERS:
        sys.exit("usage: python -m tests.fakegcp.provider google|google-beta")
    serve(Provider(args[0]))


if __name__ == "__main__":
    main()
