"""Real `terraform fmt -check` over every rendered module and the golden files."""

import subprocess
from pathlib import Path

import pytest

from tests.support.specsets import all_modules, rendered

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.mark.terraform
def test_all_rendered_output_is_fmt_clean(tmp_path, terraform_bin, terraform_env):
    for spec_set, env in all_modules():
        directory = tmp_path / spec_set / env
        directory.mkdir(parents=True)
        for name, text in rendered(spec_set)[env].items():
            (directory / name).write_text(text)
    for root in (tmp_path, GOLDEN):
        result = subprocess.run(
            [terraform_bin, "fmt", "-check", "-recursive", "-diff", str(root)],
            capture_output=True,
            text=True,
            env=terraform_env,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
