"""What terraform starts as the offline provider: hands its stdio to the session's warm provider (`zygote.py`).

Run as `python -S tests/fakegcp/launcher`, from a directory of its own so that no module beside it shadows the
standard library's. The suite starts the provider thousands of times (each terraform command starts `google` and
`google-beta`, usually twice each), and a cold Python start with grpc, protobuf and the fakes imported was two
thirds of an e2e test's time (140 starts of about 0.2 s in two tests of 42 s).

This launcher runs without site-packages (`python -S`, stdlib only, ~10 ms),
passes its stdin, stdout and stderr, argv, environment and directory to the zygote over a unix socket, and stays
until the provider it forked exits, with its exit code: to terraform it is the plugin process (the handshake line
comes from the provider on this process's stdout; a signal sent to it reaches the provider; when terraform kills
it, the provider sees the socket close and exits too).

Without a zygote (`FAKEGCP_ZYGOTE` unset, or nobody listening), or when the zygote fails before the provider
starts, it execs the provider cold, as it always did: the zygote is only ever a shortcut.
"""

import contextlib
import json
import os
import signal
import socket
import struct
import sys


def _cold(args: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, "-m", "tests.fakegcp.provider", *args])


def main() -> None:
    args = sys.argv[1:]
    path = os.environ.get("FAKEGCP_ZYGOTE")
    if not path:
        _cold(args)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
        request = json.dumps({"argv": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(connection, [struct.pack("!I", len(request))], [0, 1, 2])
        connection.sendall(request)
    except OSError:
        connection.close()
        _cold(args)
    replies = connection.makefile("rb")
    first = replies.readline()
    if not first.startswith(b"pid "):  # the zygote failed before forking: nothing has touched stdout yet
        connection.close()
        _cold(args)
    provider = int(first.split()[1])

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(provider, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    code = 1  # the provider died without saying how (killed)
    for line in replies:
        if line.startswith(b"exit "):
            code = int(line.split()[1])
    sys.exit(code)


if __name__ == "__main__":
    main()
