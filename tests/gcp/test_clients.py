"""How dfinfra builds Google's clients: the emulator switch must never quietly send secrets in the clear."""

import pytest

from dataform_infra.gcp.clients import EMULATOR_ENV, GoogleApis


@pytest.mark.parametrize(
    ("address", "warns"),
    [
        ("127.0.0.1:8085", False),
        ("localhost:8085", False),
        ("[::1]:8085", False),
        ("10.1.2.3:8085", True),
        ("emulator.internal:443", True),
        ("127.evil.example:8085", True),  # #22: a name that merely starts with 127. is not loopback
        ("127.0.0.2:8085", False),
    ],
)
def test_a_non_loopback_emulator_is_flagged(monkeypatch, address, warns):
    monkeypatch.setenv(EMULATOR_ENV, address)
    warning = GoogleApis().plaintext_warning
    assert (warning is not None) is warns
    if warns:
        assert address in warning and "unencrypted" in warning


def test_no_emulator_no_warning(monkeypatch):
    monkeypatch.delenv(EMULATOR_ENV, raising=False)
    assert GoogleApis().plaintext_warning is None
