"""#24: runs that use a BigQuery connection (BigLake and object tables, remote functions and models): the
runner gets BigQuery Connection User on that connection only, through the registry's
google_bigquery_connection_iam_member (provider 8.x; on 7.45, whose facts hold no such type, validate
names the grant and doctor checks it)."""

from __future__ import annotations

import re

import pytest

from dataform_infra.access import cover
from dataform_infra.errors import SpecError
from dataform_infra.render.engine import render_module
from dataform_infra.spec.loader import load_deployment
from dataform_infra.spec.models import Environment
from dataform_infra.specset import SpecSet
from tests.hcl_schema import check_module
from tests.specs import host, write_specs

LAKE = "acme-lake-proj.EU.biglake_events"


def connection_user(provider: str = "~> 8.7", connections: list[str] | None = None) -> dict:
    spec = host()
    spec["provider_version"] = provider
    spec["runners"][0]["bigquery"]["connections"] = connections or [LAKE]
    return spec


def test_the_field_is_in_the_schema_and_a_malformed_name_is_located(tmp_path):
    props = Environment.model_json_schema(by_alias=True)["$defs"]["BigQueryAccess"]["properties"]
    assert "Connection User on each connection" in props["connections"]["description"]
    for bad in ("biglake", "acme-lake-proj.biglake", "Acme.EU.x"):
        with pytest.raises(SpecError) as info:
            load_deployment(
                write_specs(tmp_path / bad.replace(".", "_"), {"staging": connection_user(connections=[bad])})
            )
        [problem] = info.value.problems
        assert problem.line and "runners[0].bigquery.connections[0]" in problem.describe()
        assert "project-id.location.connection_id" in problem.describe()
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path / "dup", {"staging": connection_user(connections=[LAKE, LAKE])}))
    assert "duplicate connection" in info.value.problems[0].describe()


def test_a_connection_a_run_uses_gets_connection_user_on_that_connection_only(tmp_path):
    ws = SpecSet(write_specs(tmp_path, {"staging": connection_user()}))
    [grant] = [g for g in ws.module("staging").grants if g.resource.kind == "connection"]
    assert (grant.resource_type, grant.role, grant.target, grant.rule) == (
        "google_bigquery_connection_iam_member",
        "roles/bigquery.connectionUser",
        {"project": "acme-lake-proj", "location": "eu", "connection_id": "biglake_events"},
        "runner-uses-connection",
    )
    [need] = [r for r in ws.access.requirements if r.resource.kind == "connection"]
    assert (need.chain, need.permission, need.resource.full_name) == (
        "runner-uses-connection",
        "bigquery.connections.use",
        "//bigqueryconnection.googleapis.com/projects/acme-lake-proj/locations/eu/connections/biglake_events",
    )
    assert {run for run in need.runs} == {r.id for r in ws.runs() if r.runner.runner.name == "host-runner"}
    assert ws.validate().violations == [] and ws.coverage().unserved == []
    files = render_module(ws.module("staging"))
    assert check_module(files, "8.7.0") == []
    assert (
        '  project       = "acme-lake-proj"\n  location      = "eu"\n  connection_id = "biglake_events"\n'
        '  role          = "roles/bigquery.connectionUser"\n'
    ) in files["iam.tf"]
    # Both ways: without the grant the requirement is unmet, at the spec line that asks for it.
    grants = [g for env in ws.deployment.environments for g in ws.module(env).grants if g is not grant]
    [unmet] = [r for r in cover(ws.access.requirements, grants).unmet if r.resource.kind == "connection"]
    assert unmet.spec_path == ("runners", 0, "bigquery", "connections", 0)


def test_on_the_7_45_line_the_grant_is_named_not_rendered(tmp_path):
    pinned = SpecSet(write_specs(tmp_path, {"staging": connection_user("~> 7.45")}))
    assert not [g for g in pinned.module("staging").grants if g.resource.kind == "connection"]
    report = pinned.validate()
    assert report.violations == []
    [warning] = [w.describe() for w in report.warnings if "biglake_events" in w.describe()]
    assert "runners[0].bigquery.connections[0]" in warning and "roles/bigquery.connectionUser" in warning


@pytest.mark.terraform
def test_a_connection_grant_applies_offline_and_doctor_checks_it(tmp_path, cloud):
    from tests.spec.test_features import applied_host

    check = re.compile(r"^(PASS|FAIL)  run:runner-uses-connection:host-runner@\S+:connection:", re.M)
    with applied_host(tmp_path, cloud, connection_user()) as (_ws, _apis, project):
        [(_, key, body)] = cloud.store.list("google_bigquery_connection_iam_member")
        assert (body["connection_id"], body["location"], body["role"]) == (
            "biglake_events",
            "eu",
            "roles/bigquery.connectionUser",
        )
        assert [m.group(1) for m in check.finditer(project.run("doctor", "staging", expect=None))] == ["PASS"]
        cloud.store.delete("google_bigquery_connection_iam_member", key)
        assert [m.group(1) for m in check.finditer(project.run("doctor", "staging", expect=None))] == ["FAIL"]
        plan = project.run("plan", "staging", "--json", expect=2)  # the grant is drift: planned again
        assert "google_bigquery_connection_iam_member" in plan
