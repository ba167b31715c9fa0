"""Protocol messages and service stubs, compiled from the .proto files beside this module.

grpcio-tools' protoc compiles them once per machine into a cache outside the tree (keyed by the files' digest and
the compiler's version), and every provider process imports the compiled modules from there: no generated code in
the tree, and no compile on each of the thousands of provider starts a full suite makes (compiling in memory at
import, as `grpc.protos_and_services` does, was a third of a provider's start).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import grpc

_PROTO_DIR = Path(__file__).resolve().parent / "proto"
_PROTOS = ("tfplugin6.proto", "goplugin.proto")


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dfinfra-tests" / "protos"


def _digest() -> str:
    digest = hashlib.sha256(grpc.__version__.encode())  # grpcio-tools is released with grpcio, version for version
    for name in _PROTOS:
        digest.update(name.encode() + b"\0" + (_PROTO_DIR / name).read_bytes())
    return digest.hexdigest()[:24]


def _compiled() -> Path:
    """The directory holding the compiled modules, compiling them first when this machine has none yet.

    Several processes may start at once: each compiles into a directory of its own and renames it into place,
    so a reader sees a complete directory or none."""
    target = _cache_root() / _digest()
    if (target / "complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".compiling-", dir=target.parent))
    import grpc_tools  # only here: importing the compiler is a tenth of a provider's start
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{_PROTO_DIR}",
            f"-I{well_known}",
            f"--python_out={staging}",
            f"--grpc_python_out={staging}",
            *_PROTOS,
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed ({code}) on {_PROTOS} in {_PROTO_DIR}")
    (staging / "complete").write_text("")
    try:
        staging.rename(target)
    except OSError:  # another process put its copy there first: the same files
        for path in staging.iterdir():
            path.unlink()
        staging.rmdir()
    return target


def _load() -> tuple[ModuleType, ModuleType, ModuleType, ModuleType]:
    directory = str(_compiled())
    if directory not in sys.path:
        sys.path.insert(0, directory)  # the generated stubs import their messages by bare module name
    return tuple(  # type: ignore[return-value]
        importlib.import_module(name)
        for name in ("tfplugin6_pb2", "tfplugin6_pb2_grpc", "goplugin_pb2", "goplugin_pb2_grpc")
    )


pb, services, plugin_pb, plugin_services = _load()
