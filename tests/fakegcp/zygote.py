"""A warm offline provider: imports the fakes once, then forks one provider per terraform start (`launcher/`).

`python -m tests.fakegcp.zygote SOCKET` listens on SOCKET (its directory private to this user). Each connection
carries a launcher's stdin, stdout and stderr (SCM_RIGHTS), then its argv, environment and working directory as
JSON. The zygote forks; the child takes those as its own and runs `provider.main` exactly as a cold start would,
so every request reaches the same code with the same environment (the store, the served version, terraform's
plugin handshake variables). The parent never creates a gRPC object, so forking is safe: each child starts its own
server. The child says `pid N` first and `exit N` last; if its launcher dies (terraform killed it), the socket
closes and the child exits.

Each child records its pid in `<store>.pids/` while it runs, so a test can still ask which providers outlived
terraform (`harness.provider_processes`): their command line is the zygote's, not the provider's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import threading
import traceback
from pathlib import Path

PIDS_SUFFIX = ".pids"


def _warm() -> None:
    """Import, parse and make what every provider start would (never a gRPC object): the children inherit it."""
    import concurrent.futures.thread  # noqa: F401  (the server's executor, imported lazily by `futures`)

    import grpc._server  # noqa: F401  (imported on the first `grpc.server`)

    from tests.fakegcp import provider, server, types  # noqa: F401
    from tests.fakegcp.schema import VERSIONS, _load

    for version in VERSIONS:
        _load(version, "schema.json")
        _load(version, "constraints.json")
    server._server_certificate()  # its key and signature: a fifth of a forked start


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the launcher went away")
        data += chunk
    return data


def _child(connection: socket.socket, fds: list[int], request: dict) -> None:
    """The provider process: never returns."""
    code = 1
    pidfile: Path | None = None
    try:
        os.setsid()  # its own session: the zygote's signals are not its
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        connection.sendall(f"pid {os.getpid()}\n".encode())

        def watch() -> None:  # the launcher sends nothing: EOF means terraform killed it
            try:
                connection.recv(1)
            finally:
                os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
        store = os.environ.get("FAKEGCP_STORE")
        if store:
            pidfile = Path(store + PIDS_SUFFIX) / str(os.getpid())
            pidfile.parent.mkdir(exist_ok=True)
            pidfile.write_text("")
        from tests.fakegcp import provider

        try:
            provider.main(request["argv"])
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        if pidfile is not None:
            pidfile.unlink(missing_ok=True)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            connection.sendall(f"exit {code}\n".encode())
        except OSError:
            pass
        os._exit(code)


def serve(path: str) -> None:
    _warm()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    print("ready", flush=True)
    while True:
        connection, _ = listener.accept()
        fds: list[int] = []
        try:
            header, fds, _flags, _address = socket.recv_fds(connection, 4, 3)
            if len(header) < 4 or len(fds) != 3:
                raise ConnectionError("a request carries a length and three descriptors")
            (size,) = struct.unpack("!I", header)
            request = json.loads(_read_exactly(connection, size))
            pid = os.fork()
        except (OSError, ValueError, ConnectionError):
            connection.close()  # the launcher starts the provider cold
            for fd in fds:
                os.close(fd)
            continue
        if pid == 0:
            listener.close()
            _child(connection, fds, request)
        connection.close()
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    serve(sys.argv[1])
