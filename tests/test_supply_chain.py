"""Supply-chain hygiene: bounded dependency ranges, and no network use at import time."""

import importlib
import importlib.metadata
import pkgutil
import re
import socket

import pytest

import dataform_infra


def test_every_dependency_range_has_an_upper_bound():
    """Installed metadata: runtime and every extra (the self-references of extras aside)."""
    requirements = [r.split(";")[0] for r in importlib.metadata.requires("dataform-infra") or []]
    assert any(r.startswith("typer") for r in requirements)
    unbounded = [r for r in requirements if not r.startswith("dataform-infra") and not re.search(r"<\s*\d", r)]
    assert unbounded == []


def test_importing_every_module_opens_no_connection(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access at import time")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    names = [m.name for m in pkgutil.walk_packages(dataform_infra.__path__, "dataform_infra.")]
    assert "dataform_infra.gcp.clients" in names
    for name in names:
        if name == "dataform_infra.__main__":
            continue
        importlib.import_module(name)


@pytest.mark.parametrize(
    "module",
    ["google.cloud.secretmanager_v1", "google.cloud.iam_admin_v1", "google.cloud.service_usage_v1", "python_terraform"],
)
def test_third_party_clients_import_offline(monkeypatch, module):
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(AssertionError(module)))
    importlib.import_module(module)
