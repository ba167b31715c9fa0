"""#24: authorized datasets. A dataset lets another's views read it on their readers' behalf
(`datasets[].authorized_datasets`): an entry of its access list (`google_bigquery_dataset_access`, provider 8.x).
Google's provider documents that `google_bigquery_dataset_iam_member` removes authorizations, so every grant on
such a dataset is an access-list entry too; policy refuses the two on one dataset. Runs and people that read the
views depend on the authorization (the `authorized-views` chain), proved by validate and checked by doctor."""

from __future__ import annotations

import pytest

from dataform_infra import policy
from dataform_infra.access import cover
from dataform_infra.errors import SpecError
from dataform_infra.render.engine import render_module
from dataform_infra.spec.loader import load_deployment
from dataform_infra.spec.models import Environment
from dataform_infra.specset import SpecSet
from tests.hcl_schema import check_module
from tests.specs import host, write_specs


def authorizing(provider: str = "~> 8.7") -> dict:
    """marts authorizes the views in `reports`, which a reporting runner writes and analysts read."""
    spec = host()
    spec["provider_version"] = provider
    spec["datasets"] += [{"id": "reports"}]
    spec["datasets"][0]["authorized_datasets"] = ["reports"]
    spec["runners"].append({"name": "reporter", "bigquery": {"writes": ["reports"]}})
    spec["releases"].append(
        {"name": "reports", "git_ref": "main", "compilation": {"schema": "reports", "has_assertions": False}}
    )
    spec["workflows"].append({"name": "reports-daily", "release": "reports", "runner": "reporter", "cron": "0 8 * * *"})
    spec["people"] = [{"member": "group:analysts@acme.example", "reads": ["reports"]}]
    return spec


def test_the_field_is_in_the_schema_and_mistakes_are_located(tmp_path):
    props = Environment.model_json_schema(by_alias=True)["$defs"]["Dataset"]["properties"]
    assert "whoever reads those views needs no access here" in props["authorized_datasets"]["description"]
    for k, (change, message) in enumerate(
        [
            (lambda s: s["datasets"][0].update(authorized_datasets=["ghost"]), "dataset 'ghost' is not declared"),
            (lambda s: s["datasets"][0].update(authorized_datasets=["marts"]), "cannot authorize itself"),
            (
                lambda s: s.update(provider_version="~> 7.45"),
                "an authorized dataset (google_bigquery_dataset_access) needs provider 8.x",
            ),
            (lambda s: s["datasets"][2].update(authorized_datasets=["marts"]), "so authorized_datasets does not"),
        ]
    ):
        spec = authorizing()
        change(spec)
        with pytest.raises(SpecError) as info:
            load_deployment(write_specs(tmp_path / str(k), {"staging": spec}))
        found = [p.describe() for p in info.value.problems]
        assert any(".yaml:" in p and message in p for p in found), (message, found)


def test_every_grant_on_an_authorizing_dataset_is_an_access_list_entry(tmp_path):
    ws = SpecSet(write_specs(tmp_path, {"staging": authorizing()}))
    module = ws.module("staging")
    on_marts = [g for g in module.grants if g.resource.label == "dataset acme-host-proj.marts"]
    assert {(g.resource_type, g.role_value, str(g.member_attribute)) for g in on_marts if not g.authorized} == {
        ("google_bigquery_dataset_access", "WRITER", "user_by_email")
    }
    [authorization] = [g for g in on_marts if g.authorized]
    assert authorization.resource_type == "google_bigquery_dataset_access"
    assert authorization.principal.member == "views:acme-host-proj.reports"
    # Other datasets keep their additive IAM members.
    assert {g.resource_type for g in module.grants if g.resource.label == "dataset acme-host-proj.reports"} == {
        "google_bigquery_dataset_iam_member"
    }
    files = render_module(module)
    assert check_module(files, "8.7.0") == []
    assert (
        '  dataset {\n    dataset {\n      project_id = "acme-host-proj"\n'
        "      dataset_id = google_bigquery_dataset.reports.dataset_id\n    }\n"
        '    target_types = ["VIEWS"]\n  }\n'
    ) in files["iam.tf"]
    assert '  role          = "WRITER"\n  user_by_email = google_service_account.host_runner.email\n' in files["iam.tf"]
    assert ws.validate().violations == [] and ws.coverage().unserved == [] and ws.coverage().unmet == []
    assert policy.check(policy.facts_from_hcl(files)) == []  # the rendered HCL passes lint too


def test_an_access_list_entry_beside_an_iam_member_on_one_dataset_is_refused():
    text = (
        'resource "google_bigquery_dataset_access" "a" {\n  project = "p"\n  dataset_id = "d"\n'
        '  role = "READER"\n  user_by_email = "a@b.example"\n}\n'
        'resource "google_bigquery_dataset_iam_member" "m" {\n  project = "p"\n  dataset_id = "d"\n'
        '  role = "roles/bigquery.dataViewer"\n  member = "user:b@b.example"\n}\n'
    )
    [finding] = [f for f in policy.check(policy.facts_from_hcl({"main.tf": text})) if f.severity == "violation"]
    assert finding.rule == "additive-iam-only" and "fight" in finding.message


def test_whoever_reads_the_views_depends_on_the_authorization(tmp_path):
    ws = SpecSet(write_specs(tmp_path, {"staging": authorizing()}))
    [need] = [r for r in ws.access.requirements if r.chain == "authorized-views"]
    assert (need.principal.member, need.permission, need.resource.label) == (
        "views:acme-host-proj.reports",
        "bigquery.tables.getData",
        "dataset acme-host-proj.marts",
    )
    reporter_runs = {r.id for r in ws.runs() if r.runner.runner.name == "reporter"}
    assert set(need.runs) == reporter_runs and reporter_runs
    assert "group:analysts@acme.example" in need.why
    # Both ways: without the authorization the requirement is unmet, at the line that asks for it.
    grants = [g for g in ws.module("staging").grants if not g.authorized]
    [unmet] = [r for r in cover(ws.access.requirements, grants).unmet if r.chain == "authorized-views"]
    assert unmet.spec_path == ("datasets", 0, "authorized_datasets", 0)


def test_another_environment_may_not_grant_on_an_authorizing_dataset(tmp_path):
    from tests.specs import target

    t = target()
    t["runners"][0]["bigquery"]["reads"] = ["acme-host-proj.marts"]
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": authorizing(), "prod": t}))
    [problem] = info.value.problems
    assert problem.line and "prod.yaml" in problem.describe() and "runners[0].bigquery.reads[0]" in problem.describe()
    assert "made by the module of 'staging'" in problem.describe()


@pytest.mark.parametrize(
    "member_dataset",
    ['"d"', "google_bigquery_dataset.a.dataset_id", "var.dataset"],  # a literal, the reference, an unknown
)
def test_lint_sees_one_dataset_however_it_is_named(member_dataset):
    """The review's bypass: an entry naming the dataset by reference beside an IAM member naming it by literal
    (or by a value lint cannot know) is the same dataset."""
    text = (
        'resource "google_bigquery_dataset" "a" {\n  project = "p"\n  dataset_id = "d"\n  location = "EU"\n}\n'
        'resource "google_bigquery_dataset_access" "e" {\n  project = "p"\n'
        "  dataset_id = google_bigquery_dataset.a.dataset_id\n"
        '  dataset {\n    dataset {\n      project_id = "p"\n      dataset_id = "v"\n    }\n'
        '    target_types = ["VIEWS"]\n  }\n}\n'
        f'resource "google_bigquery_dataset_iam_member" "m" {{\n  project = "p"\n  dataset_id = {member_dataset}\n'
        '  role = "roles/bigquery.dataViewer"\n  member = "user:b@b.example"\n}\n'
    )
    found = [f.rule for f in policy.check(policy.facts_from_hcl({"main.tf": text})) if f.severity == "violation"]
    assert found == ["additive-iam-only"]


def test_a_grant_from_another_environment_in_the_same_project_is_refused_too(tmp_path):
    """The review's bypass: another environment in the same project naming the dataset by id (`create: false`)."""
    other = host()
    other["state"] = {"bucket": "acme-other-tfstate", "prefix": "dataform/other"}
    del other["repository"]
    other["releases"], other["workflows"] = [], []
    other["datasets"] = [{"id": "marts", "create": False}]
    other["runners"] = [{"name": "other-runner", "bigquery": {"reads": ["marts"]}}]
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": authorizing(), "other": other}))
    assert any(
        "other.yaml" in p.describe()
        and "runners[0].bigquery.reads[0]" in p.describe()
        and "authorizes views" in p.describe()
        for p in info.value.problems
    ), info.value.describe()
