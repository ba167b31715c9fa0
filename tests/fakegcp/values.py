"""cty values on the wire: msgpack DynamicValues <-> plain Python, shaped by a schema block.

Terraform sends objects as msgpack maps and unknown values as msgpack extension 0 (refined
unknowns use extension 12); responses must spell every attribute and block of the schema,
nulls included, or Terraform rejects them. Python side: dicts, lists, str, int/float, bool, None
and `UNKNOWN`.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

from tests.fakegcp.constraints import UNKNOWN

_UNKNOWN_EXT = msgpack.ExtType(0, b"\x00")


def _ext_hook(code: int, data: bytes) -> Any:
    return UNKNOWN  # plain (0) or refined (12) unknown value


def decode(raw: bytes) -> Any:
    if not raw:
        return None
    return msgpack.unpackb(raw, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def decode_json(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


def _encode_type(value: Any, type_: Any) -> Any:
    if value is UNKNOWN:
        return _UNKNOWN_EXT
    if value is None:
        return None
    if isinstance(type_, str):
        if type_ == "number" and isinstance(value, float) and value.is_integer():
            return int(value)
        if type_ == "string" and not isinstance(value, str):
            return str(value).lower() if isinstance(value, bool) else str(value)
        return value
    kind, inner = type_[0], type_[1]
    if kind in ("list", "set"):
        return [_encode_type(v, inner) for v in value]
    if kind == "map":
        return {k: _encode_type(v, inner) for k, v in value.items()}
    if kind == "object":
        return {name: _encode_type(value.get(name), t) for name, t in inner.items()}
    raise TypeError(f"unsupported cty type {type_!r}")


def shape(value: Any, block: dict[str, Any]) -> Any:
    """`value` as a full object of `block`: every attribute and block present, in wire types."""
    if value is None:
        return None
    if value is UNKNOWN:
        return _UNKNOWN_EXT
    out: dict[str, Any] = {}
    for name, attribute in block.get("attributes", {}).items():
        out[name] = _encode_type(value.get(name), attribute["type"])
    for name, nested in block.get("block_types", {}).items():
        item = value.get(name)
        mode = nested["nesting_mode"]
        if mode == "single":
            out[name] = shape(item, nested["block"]) if item is not None else None
        elif mode in ("list", "set"):
            out[name] = [shape(v, nested["block"]) for v in (item or [])]
        else:
            raise TypeError(f"nesting mode {mode} not supported")
    return out


def encode(value: Any, block: dict[str, Any]) -> bytes:
    return msgpack.packb(shape(value, block), use_bin_type=True)


def normalise(value: Any, block: dict[str, Any]) -> Any:
    """A decoded value (or JSON state) with every attribute and block of `block` present."""
    if value is None or value is UNKNOWN:
        return value
    out: dict[str, Any] = {name: value.get(name) for name in block.get("attributes", {})}
    for name, nested in block.get("block_types", {}).items():
        item = value.get(name)
        if nested["nesting_mode"] == "single":
            out[name] = normalise(item, nested["block"]) if item is not None else None
        else:
            out[name] = [normalise(v, nested["block"]) for v in (item or [])]
    return out
