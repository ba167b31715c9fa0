"""The shipped environments render to the reviewed HCL in tests/golden, byte for byte.

The golden files are what a reviewer approved; other tests prove the same output is schema-valid,
fmt-clean and policy-clean. After an intended change: `python -m tests.support.generated` (which rewrites every
generated file), then review the diff of tests/golden like any other code.
"""

import os
from pathlib import Path

import pytest

from tests.support.specsets import SPEC_SETS, rendered

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.parametrize("env", sorted(rendered("shipped")))
def test_shipped_environment_matches_golden(env):
    files = rendered("shipped")[env]
    directory = GOLDEN / env
    on_disk = {p.name: p.read_text() for p in sorted(directory.glob("*.tf"))}
    assert sorted(on_disk) == sorted(files)
    for name, text in files.items():
        assert text == on_disk[name], f"{env}/{name} differs from the reviewed golden file"


@pytest.mark.parametrize("spec_set", sorted(SPEC_SETS))
def test_render_is_byte_identical_across_processes_and_hash_seeds(spec_set, tmp_path):
    """Ordering bugs (a set or dict order leaking into HCL) show only across processes: render in two
    fresh interpreters with different hash seeds and compare every byte."""
    import subprocess
    import sys

    outputs = []
    for seed in ("0", "4242"):
        out = tmp_path / f"seed-{seed}"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dataform_infra",
                "render",
                "--all",
                "-e",
                str(SPEC_SETS[spec_set]),
                "--out",
                str(out),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=120,
        )
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.tf"))})
    assert outputs[0] == outputs[1]
    assert {k: v.decode() for k, v in outputs[0].items()} == {
        f"{env}/{name}": text for env, files in rendered(spec_set).items() for name, text in files.items()
    }
