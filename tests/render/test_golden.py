"""The shipped environments render to the reviewed HCL in tests/golden, byte for byte.

The golden files are what a reviewer approved; other tests prove the same output is schema-valid,
fmt-clean and policy-clean. After an intended change: DFINFRA_UPDATE_GOLDEN=1 pytest tests/render/test_golden.py,
then review the diff of tests/golden like any other code.
"""

import os
from pathlib import Path

import pytest

from dataform_infra.workspace import Workspace
from tests.conftest import SPEC_SETS, rendered

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.parametrize("env", sorted(rendered("shipped")))
def test_shipped_environment_matches_golden(env):
    files = rendered("shipped")[env]
    directory = GOLDEN / env
    if os.environ.get("DFINFRA_UPDATE_GOLDEN"):
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.tf"):
            old.unlink()
        for name, text in files.items():
            (directory / name).write_text(text)
    on_disk = {p.name: p.read_text() for p in sorted(directory.glob("*.tf"))}
    assert sorted(on_disk) == sorted(files)
    for name, text in files.items():
        assert text == on_disk[name], f"{env}/{name} differs from the reviewed golden file"


def test_render_is_deterministic():
    again = Workspace(SPEC_SETS["shipped"])
    assert {m.env: dict(m.files) for m in again.render(list(again.deployment.environments))} == rendered("shipped")
