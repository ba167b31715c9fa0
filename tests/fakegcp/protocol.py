"""Protocol messages and service stubs, compiled at import from the .proto files beside this module.

`grpc.protos_and_services` (grpcio-tools) compiles them in memory: no generated code in the tree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc

_PROTO_DIR = str(Path(__file__).resolve().parent / "proto")
if _PROTO_DIR not in sys.path:
    sys.path.insert(0, _PROTO_DIR)

pb, services = grpc.protos_and_services("tfplugin6.proto")
plugin_pb, plugin_services = grpc.protos_and_services("goplugin.proto")
