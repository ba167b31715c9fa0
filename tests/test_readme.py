"""README.md stays true: generated sections match the code, examples match the rendered HCL, CI runs its command."""

import re

import pytest

from tests.support.generated import FILES, SECTIONS, access_doc, runs_section, section
from tests.support.specsets import REPO, SPEC_SETS, rendered

README = (REPO / "README.md").read_text()
REGENERATE = "regenerate: python -m tests.support.generated"


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_generated_sections_match_the_code(name):
    """README's rules list."""
    assert section(README, name) == SECTIONS[name](), REGENERATE


@pytest.mark.parametrize("path", sorted(FILES))
def test_generated_files_match_the_code(path):
    """docs/reference.md, docs/access.md, the JSON Schema."""
    assert (REPO / path).read_text() == FILES[path](), REGENERATE


def test_explain_runs_prints_the_documented_table():
    from typer.testing import CliRunner

    from dataform_infra.cli import app

    result = CliRunner().invoke(app, ["explain", "--runs", "-e", str(SPEC_SETS["shipped"])])
    assert result.exit_code == 0, result.output
    assert result.output == runs_section() and result.output in access_doc()


def test_readme_is_a_five_minute_read_and_links_the_generated_reference():
    assert len(README) < 45_000  # the generated reference lives in docs/
    for path in ("docs/reference.md", "docs/access.md", "ARCHITECTURE.md", "examples/README.md"):
        assert f"]({path})" in README, path


def test_every_hcl_example_is_real_rendered_output():
    blocks = re.findall(r"```hcl\n(.*?)```", README, re.S)
    assert blocks
    everything = "\n".join(text for files in rendered("shipped").values() for text in files.values())
    for block in blocks:
        assert block in everything


def test_every_yaml_example_is_in_a_shipped_spec():
    for block in re.findall(r"```yaml\n# (\S+) \(excerpt\)\n(.*?)```", README, re.S):
        path, body = block
        spec = (REPO / path).read_text()
        for line in body.splitlines():
            assert line in spec, f"{path} no longer contains: {line}"


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    assert len(commands) >= 2
    install_and_render, install_and_test = commands[0], commands[1]
    assert "dfinfra render --all" in install_and_render
    assert "pytest" in install_and_test
    assert install_and_test in (REPO / ".ci" / "run").read_text()


def test_examples_index_lists_every_example():
    index = (REPO / "examples" / "README.md").read_text()
    for name in SPEC_SETS:
        if name != "shipped":
            assert f"({name}/)" in index
    spec_examples = [p.name for p in (REPO / "examples").iterdir() if (p / "environments").is_dir()]
    assert sorted(spec_examples) == sorted(n for n in SPEC_SETS if n != "shipped")


def test_readme_links_resolve():
    for target in re.findall(r"\]\(([^)#:]+)\)", README):
        assert (REPO / target).exists(), target
