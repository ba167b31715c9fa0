"""#24: datasets as teams configure them: a location of their own, labels, a friendly name, table and
partition expiration, the time-travel window, and dropping tables on destroy (never in a protected
environment). Only a dataset dfinfra creates carries them."""

from __future__ import annotations

import json

import pytest

from dataform_infra.errors import SpecError
from dataform_infra.render.engine import render_module
from dataform_infra.spec.loader import load_deployment
from dataform_infra.spec.models import Environment
from dataform_infra.specset import SpecSet
from tests.specs import host, write_specs

OPTIONS = {
    "friendly_name": "Marts",
    "location": "europe-west2",
    "labels": {"team": "analytics", "tier": "gold"},
    "default_table_expiration_ms": 86_400_000,
    "default_partition_expiration_ms": 7_776_000_000,
    "max_time_travel_hours": 48,
}


def with_options(**extra: object) -> dict:
    spec = host()
    spec["datasets"][0].update(OPTIONS, **extra)
    return spec


def test_the_options_are_in_the_schema():
    props = Environment.model_json_schema(by_alias=True)["$defs"]["Dataset"]["properties"]
    assert set(OPTIONS) | {"delete_contents_on_destroy"} <= set(props)


def test_the_options_render_on_the_dataset_only(tmp_path):
    files = render_module(SpecSet(write_specs(tmp_path, {"staging": with_options()})).module("staging"))
    marts = files["bigquery.tf"].split('resource "google_bigquery_dataset" "marts" {')[1].split("\n}\n")[0]
    assert (
        '  location                        = "europe-west2"\n'  # its own, not the environment's EU
        '  friendly_name                   = "Marts"\n'
        "  default_table_expiration_ms     = 86400000\n"
        "  default_partition_expiration_ms = 7776000000\n"
        '  max_time_travel_hours           = "48"\n'
        "\n"
        '  labels = {\n    "team" = "analytics"\n    "tier" = "gold"\n  }\n'
    ) in marts
    assert "  delete_contents_on_destroy = false\n" in marts
    assertions_block = (
        files["bigquery.tf"].split('resource "google_bigquery_dataset" "assertions" {')[1].split("\n}\n")[0]
    )
    assert '  location   = "EU"\n' in assertions_block and "labels" not in assertions_block


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_time_travel_hours": 50}, "max_time_travel_hours 50 must be 48 to 168, a multiple of 24"),
        ({"default_table_expiration_ms": 1000}, "default_table_expiration_ms"),
        ({"location": "mars"}, "a BigQuery location is"),
    ],
)
def test_bad_values_are_located(tmp_path, change, message):
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": with_options(**change)}))
    [problem] = info.value.problems
    assert problem.line and "datasets[0]" in problem.describe() and message in problem.describe(), problem.describe()


def test_an_unmanaged_dataset_takes_no_options(tmp_path):
    spec = host()
    spec["datasets"][2]["friendly_name"] = "Raw"  # raw is `create: false`
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": spec}))
    [problem] = info.value.problems
    assert "datasets[2]" in problem.describe() and "so friendly_name does not apply" in problem.describe()


def test_a_protected_environment_never_drops_tables_on_destroy(tmp_path):
    spec = with_options(delete_contents_on_destroy=True)
    files = render_module(SpecSet(write_specs(tmp_path / "a", {"staging": spec})).module("staging"))
    assert "  delete_contents_on_destroy = true\n" in files["bigquery.tf"]
    spec["protected"] = True
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path / "b", {"staging": spec}))
    [problem] = info.value.problems
    assert problem.line and "datasets[0].delete_contents_on_destroy" in problem.describe()
    assert "is protected" in problem.describe()


@pytest.mark.terraform
def test_the_options_apply_offline_and_plan_no_change_after(tmp_path, cloud):
    from tests.spec.test_features import applied_host

    with applied_host(tmp_path, cloud, with_options()) as (ws, apis, project):
        body = cloud.store.get("google_bigquery_dataset", "projects/acme-host-proj/datasets/marts")
        assert {k: body[k] for k in ("friendly_name", "location", "default_table_expiration_ms")} == {
            "friendly_name": "Marts",
            "location": "europe-west2",
            "default_table_expiration_ms": 86_400_000,
        }
        assert body["max_time_travel_hours"] == "48" and body["labels"] == {"team": "analytics", "tier": "gold"}
        plan = project.run("plan", "staging", "--json", expect=0)
        assert not json.loads(plan[plan.index("{") :])["staging"]["has_changes"], plan
        config = f"{ws.topology.repositories[0].api_name}/workflowConfigs/host-daily"
        assert apis.run_scheduled(config) == ("SUCCEEDED", [])


def test_a_dataset_in_another_location_than_its_release_is_warned_with_both_lines(tmp_path):
    """BigQuery runs a job in one location and refuses writes to a dataset elsewhere: the release (EU, the
    environment's) writes marts, which the spec places in europe-west2."""
    report = SpecSet(write_specs(tmp_path / "a", {"staging": with_options()})).validate()
    assert report.violations == []
    [warning] = [w.describe() for w in report.warnings if "another location" in w.describe()]
    assert "datasets[0].location" in warning and "release 'host-release' runs its jobs in EU" in warning
    assert "releases[0].compilation.location" in warning
    agreeing = with_options()
    agreeing["releases"][0]["compilation"]["location"] = "europe-west2"
    # assertions, in the environment's EU, is now the odd one out
    report = SpecSet(write_specs(tmp_path / "c", {"staging": agreeing})).validate()
    [warning] = [w.describe() for w in report.warnings if "another location" in w.describe()]
    assert "datasets[1]:" in warning and "dataset assertions is in EU" in warning
    agreeing["datasets"][1]["location"] = "europe-west2"
    report = SpecSet(write_specs(tmp_path / "b", {"staging": agreeing})).validate()
    assert not [w for w in report.warnings if "another location" in w.describe()]


def metadata_reader() -> dict:
    spec = host()
    spec["runners"][0]["bigquery"]["reads_metadata"] = ["raw", "acme-crm-prod.crm_exports"]
    spec["runners"][0]["bigquery"]["reads"] = []
    return spec


def test_metadata_only_reads_get_metadata_viewer_not_data_viewer(tmp_path):
    """#24: a runner that only lists tables and reads schemas gets Metadata Viewer, never table data."""
    ws = SpecSet(write_specs(tmp_path, {"staging": metadata_reader()}))
    grants = {
        (g.role, g.resource.label): g.rule
        for g in ws.module("staging").grants
        if g.principal.member.startswith("serviceAccount:host-runner@")
    }
    assert grants[("roles/bigquery.metadataViewer", "dataset acme-host-proj.raw")] == "runner-reads-metadata-dataset"
    assert ("roles/bigquery.metadataViewer", "dataset acme-crm-prod.crm_exports") in grants
    assert not [role for role, _ in grants if role == "roles/bigquery.dataViewer"]
    needs = {r.permission for r in ws.access.requirements if r.resource.id == "raw"}
    assert needs == {"bigquery.datasets.get", "bigquery.tables.get", "bigquery.tables.list"}
    report = ws.validate()
    assert report.violations == [] and ws.coverage().unserved == []


def test_metadata_reads_of_a_dataset_already_read_are_located(tmp_path):
    spec = metadata_reader()
    spec["runners"][0]["bigquery"]["reads"] = ["raw"]
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": spec}))
    [problem] = info.value.problems
    assert problem.line and "runners[0].bigquery.reads_metadata" in problem.describe()
    assert "already include reading metadata" in problem.describe()


@pytest.mark.terraform
def test_metadata_reads_apply_offline(tmp_path, cloud):
    from tests.spec.test_features import applied_host

    with applied_host(tmp_path, cloud, metadata_reader()) as (_ws, _apis, project):
        granted = {
            (body["dataset_id"], body["role"])
            for _, _, body in cloud.store.list("google_bigquery_dataset_iam_member")
            if body["member"].startswith("serviceAccount:host-runner@")
        }
        assert {("raw", "roles/bigquery.metadataViewer"), ("crm_exports", "roles/bigquery.metadataViewer")} <= granted
        plan = project.run("plan", "staging", "--json", expect=0)
        assert not json.loads(plan[plan.index("{") :])["staging"]["has_changes"], plan


LANDING = "acme-landing-zone"


def bucket_reader(provider: str = "~> 8.7") -> dict:
    spec = host()
    spec["provider_version"] = provider
    spec["runners"][0]["storage"] = {"reads": [LANDING]}
    return spec


def test_a_bucket_runs_read_gets_object_viewer_on_that_bucket_only(tmp_path):
    """#24: external tables and LOAD DATA read Cloud Storage: Storage Object Viewer on the bucket, never on a
    project, through the registry's google_storage_bucket_iam_member."""
    ws = SpecSet(write_specs(tmp_path, {"staging": bucket_reader()}))
    [grant] = [g for g in ws.module("staging").grants if g.resource.kind == "bucket"]
    assert (grant.resource_type, grant.role, grant.target, grant.rule) == (
        "google_storage_bucket_iam_member",
        "roles/storage.objectViewer",
        {"bucket": LANDING},
        "runner-reads-bucket",
    )
    [need] = {(r.chain, r.resource.full_name) for r in ws.access.requirements if r.resource.kind == "bucket"}
    assert need == ("runner-reads", f"//storage.googleapis.com/projects/_/buckets/{LANDING}")
    assert ws.validate().violations == [] and ws.coverage().unserved == []
    files = render_module(ws.module("staging"))
    assert f'  bucket = "{LANDING}"\n  role   = "roles/storage.objectViewer"\n' in files["iam.tf"]
    # On the 7.45 line (its facts hold no bucket IAM type) the grant is the team's, named by validate.
    pinned = SpecSet(write_specs(tmp_path / "pinned", {"staging": bucket_reader("~> 7.45")}))
    assert not [g for g in pinned.module("staging").grants if g.resource.kind == "bucket"]
    report = pinned.validate()
    assert report.violations == []
    [warning] = [w.describe() for w in report.warnings if LANDING in w.describe()]
    assert "runners[0].storage.reads[0]" in warning and "roles/storage.objectViewer" in warning


@pytest.mark.terraform
def test_a_bucket_read_applies_offline_and_doctor_checks_it(tmp_path, cloud):
    import re

    from tests.spec.test_features import applied_host

    check = re.compile(r"^(PASS|FAIL)  run:runner-reads:host-runner@\S+:bucket:" + re.escape(LANDING) + ":", re.M)
    with applied_host(tmp_path, cloud, bucket_reader()) as (_ws, _apis, project):
        [(_, key, body)] = cloud.store.list("google_storage_bucket_iam_member")
        assert (body["bucket"].removeprefix("b/"), body["role"]) == (LANDING, "roles/storage.objectViewer")
        assert [m.group(1) for m in check.finditer(project.run("doctor", "staging", expect=None))] == ["PASS"]
        cloud.store.delete("google_storage_bucket_iam_member", key)
        assert [m.group(1) for m in check.finditer(project.run("doctor", "staging", expect=None))] == ["FAIL"]
        plan = project.run("plan", "staging", "--json", expect=2)  # the grant is drift: planned again
        assert "google_storage_bucket_iam_member" in plan
