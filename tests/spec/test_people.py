"""#24: people's BigQuery access (`people:`): the team that uses the repository also queries the datasets it
builds. Data Viewer or Data Editor on each named dataset only, Job User on the environment's project where
their queries run; each is a requirement validate proves and doctor checks live."""

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

ANA = "user:ana@acme.example"


def with_people() -> dict:
    spec = host()
    spec["people"] = [
        {"member": "group:analysts@acme.example", "reads": ["marts"]},
        {"member": ANA, "reads": ["marts", "acme-crm-prod.crm_exports"], "writes": ["assertions"], "jobs_here": False},
    ]
    return spec


def test_the_field_is_in_the_schema_and_mistakes_are_located(tmp_path):
    props = Environment.model_json_schema(by_alias=True)["properties"]
    assert "query this environment's datasets themselves" in props["people"]["description"]
    spec = with_people()
    spec["people"][0]["reads"] = ["ghost"]
    spec["people"][1]["writes"] = ["marts"]
    spec["people"].append({"member": ANA})
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": spec}))
    found = [p.describe() for p in info.value.problems]
    assert all(".yaml:" in p for p in found)
    assert any("people[0].reads[0]: dataset 'ghost' is not declared" in p for p in found), found
    assert any("people[1].reads: marts listed in both writes and reads" in p for p in found), found
    assert any("people[2]: duplicate member" in p for p in found), found


def test_each_person_gets_dataset_roles_and_job_user_where_their_queries_run(tmp_path):
    ws = SpecSet(write_specs(tmp_path, {"staging": with_people()}))
    granted = {
        (g.principal.member, g.role, g.resource.label, g.rule)
        for g in ws.module("staging").grants
        if g.principal.kind == "person" and g.role.startswith("roles/bigquery.")
    }
    assert granted == {
        (
            "group:analysts@acme.example",
            "roles/bigquery.dataViewer",
            "dataset acme-host-proj.marts",
            "person-reads-dataset",
        ),
        ("group:analysts@acme.example", "roles/bigquery.jobUser", "project acme-host-proj", "person-runs-jobs"),
        (ANA, "roles/bigquery.dataViewer", "dataset acme-host-proj.marts", "person-reads-dataset"),
        (ANA, "roles/bigquery.dataViewer", "dataset acme-crm-prod.crm_exports", "person-reads-dataset"),
        (ANA, "roles/bigquery.dataEditor", "dataset acme-host-proj.assertions", "person-writes-dataset"),
    }
    report = ws.validate()
    assert report.violations == [] and ws.coverage().unserved == [] and ws.coverage().unmet == []
    files = render_module(ws.module("staging"))
    assert check_module(files, "7.45.0") == [] and check_module(files, "8.7.0") == []
    # Both ways: each grant serves a person-queries requirement, which is unmet without it, at its spec line.
    grants = [g for g in ws.module("staging").grants if g.principal.kind == "person" and "bigquery" in g.role]
    for grant in grants:
        rest = [g for g in ws.module("staging").grants if g is not grant]
        unmet = [r for r in cover(ws.access.requirements, rest).unmet if r.chain == "person-queries"]
        assert unmet and all(r.spec_path == grant.path for r in unmet), grant.address


@pytest.mark.terraform
def test_a_persons_access_applies_offline_and_doctor_checks_it(tmp_path, cloud):
    from tests.fakegcp.iam import Iam, Resource
    from tests.spec.test_features import applied_host

    check = re.compile(r"^(PASS|FAIL)  run:person-queries:(\S+?):dataset:acme-host-proj\.marts:", re.M)
    with applied_host(tmp_path, cloud, with_people()) as (_ws, _apis, project):
        # Ana's query of marts, as BigQuery authorizes it (the offline IAM, not dfinfra's model).
        assert Iam(cloud.store).allows(ANA, "bigquery.tables.getData", Resource.dataset("acme-host-proj", "marts"))
        out = project.run("doctor", "staging", expect=None)
        assert [(m.group(1), m.group(2)) for m in check.finditer(out)] == [("PASS", "ana@acme.example")], out
        [key] = [
            k
            for _, k, body in cloud.store.list("google_bigquery_dataset_iam_member")
            if body["member"] == ANA and body["dataset_id"] == "marts"
        ]
        cloud.store.delete("google_bigquery_dataset_iam_member", key)
        assert not Iam(cloud.store).allows(ANA, "bigquery.tables.getData", Resource.dataset("acme-host-proj", "marts"))
        out = project.run("doctor", "staging", expect=None)
        assert [(m.group(1), m.group(2)) for m in check.finditer(out)] == [("FAIL", "ana@acme.example")], out
