"""`existing: true` (what `dfinfra adopt` writes): schema, bad values, rendering as import blocks, and the
YAML edit that writes the marks without losing a comment."""

import json

import pytest

from dataform_infra.errors import SpecError, UsageError
from dataform_infra.render.engine import render_module
from dataform_infra.spec.loader import load_deployment
from dataform_infra.spec.marks import with_marks
from dataform_infra.spec.models import Environment
from dataform_infra.specset import SpecSet
from tests.specs import host, target, write_specs
from tests.support.specsets import REPO

MARKED = [
    ("repository",),
    ("repository", "git", "https_token"),
    ("runners", 0),
    ("datasets", 0),
    ("releases", 0),
    ("workflows", 0),
]


def _get(data, path):
    for step in path:
        data = data[step]
    return data


def test_every_adoptable_object_has_the_mark_in_the_json_schema():
    schema = Environment.model_json_schema(by_alias=True)
    for name in ("Repository", "HttpsToken", "SshKey", "Runner", "Dataset", "Release", "Workflow"):
        field = schema["$defs"][name]["properties"]["existing"]
        assert field["type"] == "boolean" and field["default"] is False and "imports" in field["description"]
    shipped = json.loads((REPO / "schema" / "environment.schema.json").read_text())
    assert shipped["$defs"]["Runner"]["properties"]["existing"] == schema["$defs"]["Runner"]["properties"]["existing"]


@pytest.mark.parametrize("path", MARKED, ids=lambda p: ".".join(map(str, p)))
def test_a_bad_mark_is_a_located_problem(tmp_path, path):
    h = host()
    _get(h, path)["existing"] = "sometimes"
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": h}))
    [problem] = info.value.problems
    assert problem.line and problem.path == ".".join(map(str, (*path, "existing"))).replace(".0", "[0]")


def test_adopting_a_dataset_dfinfra_does_not_manage_is_refused(tmp_path):
    h = host()
    h["datasets"][2]["existing"] = True  # raw: create: false
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": h}))
    [problem] = info.value.problems
    assert problem.path == "datasets[2]" and "create: false leaves it unmanaged" in problem.message


def test_marks_render_as_import_blocks_by_googles_names(tmp_path):
    h, t = host(), target()
    for path in MARKED:
        _get(h, path)["existing"] = True
    t["runners"][0]["existing"] = True
    ws = SpecSet(write_specs(tmp_path, {"staging": h, "prod": t}))
    staging = render_module(ws.module("staging"))["imports.tf"]
    for to, id_ in (
        (
            "google_dataform_repository.analytics",
            "projects/acme-host-proj/locations/europe-west2/repositories/analytics",
        ),
        ("google_secret_manager_secret.git_token", "projects/acme-host-proj/secrets/git-token"),
        (
            "google_service_account.host_runner",
            "projects/acme-host-proj/serviceAccounts/host-runner@acme-host-proj.iam.gserviceaccount.com",
        ),
        ("google_bigquery_dataset.marts", "projects/acme-host-proj/datasets/marts"),
        (
            "google_dataform_repository_release_config.host_release",
            "projects/acme-host-proj/locations/europe-west2/repositories/analytics/releaseConfigs/host-release",
        ),
        (
            "google_dataform_repository_workflow_config.host_daily",
            "projects/acme-host-proj/locations/europe-west2/repositories/analytics/workflowConfigs/host-daily",
        ),
    ):
        assert f'import {{\n  to = {to}\n  id = "{id_}"\n}}\n' in staging
    prod = render_module(ws.module("prod"))
    assert prod["imports.tf"].count("import {") == 1
    assert "imports.tf" not in render_module(
        SpecSet(write_specs(tmp_path / "plain", {"staging": host()})).module("staging")
    )


SPEC = """\
# Staging hosts the repository.
repository:
  name: analytics   # the repository id
  git:
    url: https://github.com/acme/analytics.git
    https_token:
      secret_id: git-token
      existing: false
runners:
  - name: host-runner
    bigquery: {writes: [marts]}
datasets:
  - {id: marts}
"""


def test_marks_keep_comments_and_layout(tmp_path):
    file = tmp_path / "staging.yaml"
    edited = with_marks(SPEC, file, [("repository",), ("repository", "git", "https_token"), ("runners", 0)])
    assert edited == SPEC.replace(
        "  name: analytics   # the repository id\n", "  name: analytics   # the repository id\n  existing: true\n"
    ).replace("      existing: false\n", "      existing: true\n").replace(
        "  - name: host-runner\n", "  - name: host-runner\n    existing: true\n"
    )


def test_a_flow_mapping_is_left_to_the_user_with_its_line(tmp_path):
    with pytest.raises(UsageError) as info:
        with_marks(SPEC, tmp_path / "staging.yaml", [("datasets", 0)])
    assert f"{tmp_path / 'staging.yaml'}:13: datasets[0] is not written as a block mapping" in str(info.value)


def test_marking_writes_the_file_only_when_the_deployment_still_loads(tmp_path):
    h = host()
    h["datasets"][2] = {"id": "raw", "create": False}
    ws = SpecSet(write_specs(tmp_path, {"staging": h}))
    spec = tmp_path / "staging.yaml"
    before = spec.read_text()
    with pytest.raises(SpecError):  # adopting a create: false dataset contradicts the spec
        ws.mark_existing("staging", [("datasets", 2)])
    assert spec.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["staging.yaml"]
    ws.mark_existing("staging", [("runners", 0)])
    assert load_deployment(tmp_path).environments["staging"].runners[0].existing is True


def test_a_mark_goes_after_a_quoted_value_that_continues_over_lines(tmp_path):
    """#22: `existing: true` was inserted inside a continued quoted scalar: the description changed and the
    object stayed unmarked (a 409 on the next apply)."""
    from dataform_infra.spec.marks import with_marks
    from dataform_infra.spec.yamlsource import parse_yaml

    text = 'datasets:\n  - description: "Dataform models,\n      production"\n    id: marts\n'
    marked = with_marks(text, tmp_path / "prod.yaml", [("datasets", 0)])
    data = parse_yaml(marked, tmp_path / "prod.yaml").data
    assert data["datasets"][0] == {"description": "Dataform models, production", "id": "marts", "existing": True}
