"""README.md stays true: generated sections match the code, examples match the rendered HCL, CI runs its command."""

import re

from dataform_infra import policy
from dataform_infra.explain import iam_table
from dataform_infra.spec.reference import spec_reference
from dataform_infra.workspace import Workspace
from tests.conftest import REPO, SPEC_SETS, rendered

README = (REPO / "README.md").read_text()


def section(name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", README, re.S)
    assert match, f"README.md lost its {name} markers"
    return match[1]


def test_spec_reference_matches_the_models():
    assert section("spec-reference") == spec_reference(), "regenerate: python -m dataform_infra.spec.reference"


def test_iam_table_matches_the_shipped_environments():
    workspace = Workspace(SPEC_SETS["shipped"])
    assert section("iam-table") == iam_table([workspace.module(e) for e in workspace.deployment.environments])


def test_rules_list_matches_the_policy_module():
    assert section("rules") == "".join(f"- `{r.id}`: {r.summary}\n" for r in policy.RULES)


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
