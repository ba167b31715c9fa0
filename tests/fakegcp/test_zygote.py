"""The warm provider: a launcher handed to it handshakes as a cold start would, is found while it runs, and is gone
once terraform stops or kills it; without a zygote, the launcher starts the provider cold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakegcp.harness import ProviderZygote, provider_processes, wait_for
from tests.fakegcp.mirror import LAUNCHER
from tests.fakegcp.server import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    started = ProviderZygote(tmp_path_factory.mktemp("z")).start()
    yield started
    started.stop()


def _launch(socket: Path | str, store: Path) -> subprocess.Popen[str]:
    env = dict(
        os.environ,
        FAKEGCP_ZYGOTE=str(socket),
        FAKEGCP_STORE=str(store),
        PYTHONPATH=str(LAUNCHER.parents[2]),
        PLUGIN_PROTOCOL_VERSIONS="6",
    )
    env[MAGIC_COOKIE_KEY] = MAGIC_COOKIE_VALUE
    command = [sys.executable, "-S", str(LAUNCHER), "google"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _handshake(launcher: subprocess.Popen[str]) -> str:
    assert launcher.stdout is not None
    return launcher.stdout.readline()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_a_forked_provider_handshakes_is_found_and_ends_with_its_launcher(zygote, tmp_path, stop):
    store = tmp_path / "store.db"
    launcher = _launch(zygote.socket, store)
    try:
        assert _handshake(launcher).startswith("1|6|unix|")  # go-plugin's line, from the forked provider
        [provider] = provider_processes(store)
        assert provider != launcher.pid  # the zygote's child, found by its pid file
    finally:
        launcher.send_signal(stop)  # SIGTERM is passed on; after SIGKILL the provider sees its socket close
        launcher.wait()
    wait_for(lambda: provider_processes(store) == [])


def test_without_a_zygote_the_launcher_starts_the_provider_cold(tmp_path):
    store = tmp_path / "store.db"
    launcher = _launch(tmp_path / "nobody-listens.sock", store)
    try:
        assert _handshake(launcher).startswith("1|6|unix|")
        assert provider_processes(store) == [launcher.pid]  # the launcher exec'd the provider itself
    finally:
        launcher.kill()
        launcher.wait()
