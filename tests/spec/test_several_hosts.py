"""#24: several host projects in one spec directory. Each environment that declares a repository hosts it
in its own project (dev, test and prod each with a repository, configs in each); an environment without
one belongs to the host whose repositories its releases compile (`host:` when that is ambiguous). Each
host and its environments are one setup: proved, rendered and applied as before, side by side."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dataform_infra.errors import SpecError
from dataform_infra.spec.loader import load_deployment
from dataform_infra.specset import SpecSet
from tests.specs import host, target, write_specs


def self_hosted(name: str, number: int) -> dict[str, Any]:
    """An environment hosting its own repository in its own project, with the same config names as the others."""
    spec = host()
    spec["project"] = {"id": f"acme-{name}-proj", "number": number}
    spec["state"] = {"bucket": f"acme-{name}-tfstate", "prefix": "dataform"}
    spec["releases"][0]["name"] = "nightly"
    spec["workflows"][0].update(name="daily", release="nightly")
    return spec


def three_hosts() -> dict[str, dict[str, Any]]:
    return {
        "dev": self_hosted("dev", 500000001001),
        "test": self_hosted("test", 500000001002),
        "prod": self_hosted("prod", 500000001003),
    }


def problems(tmp_path, specs: dict[str, dict[str, Any]]) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, specs))
    return [p.describe() for p in info.value.problems]


def test_each_environment_hosts_its_own_repository_and_proves_its_own_runs(tmp_path):
    ws = SpecSet(write_specs(tmp_path, three_hosts()))
    assert ws.deployment.hosts == {"dev": "dev", "prod": "prod", "test": "test"}
    report = ws.validate()
    assert report.violations == [] and ws.coverage().unserved == [] and ws.coverage().unmet == []
    for env in ("dev", "test", "prod"):
        module = ws.module(env)
        # Its own repository, its own service agent (its project's number), its own configs in it.
        assert [r.hosted.project for r in module.repositories] == [f"acme-{env}-proj"]
        assert [c.home.project for c in (*module.releases, *module.workflows)] == [f"acme-{env}-proj"] * 2
        agents = {g.principal.member for g in module.grants if g.principal.kind == "service_agent"}
        number = {"dev": 500000001001, "test": 500000001002, "prod": 500000001003}[env]
        assert agents == {f"serviceAccount:service-{number}@gcp-sa-dataform.iam.gserviceaccount.com"}
    # Every run is one of its own setup's: each workflow runs from its own host's repository.
    scheduled = {(r.env, r.repository.project) for r in ws.runs() if r.kind == "scheduled"}
    assert scheduled == {(e, f"acme-{e}-proj") for e in ("dev", "test", "prod")}


def test_apply_order_puts_each_host_before_its_targets(tmp_path):
    specs = three_hosts()
    specs["analytics"] = target()  # prod's releases' repository is named explicitly below
    specs["analytics"]["host"] = "prod"
    ws = SpecSet(write_specs(tmp_path, specs))
    order = ws.apply_order()
    assert sorted(order) == sorted(specs) and order.index("prod") < order.index("analytics")
    assert ws.deployment.part("analytics").host_name == "prod"
    assert set(ws.deployment.part("analytics").environments) == {"prod", "analytics"}
    assert ws.module("analytics").releases[0].home.project == "acme-prod-proj"


def test_a_target_belongs_to_the_only_host_declaring_its_releases_repository(tmp_path):
    specs = three_hosts()
    specs["prod"]["repository"]["name"] = "warehouse"
    specs["prod"]["releases"][0]["repository"] = "warehouse"
    specs["reporting"] = target()
    specs["reporting"]["releases"][0]["repository"] = "warehouse"
    deployment = load_deployment(write_specs(tmp_path, specs))
    assert deployment.hosts["reporting"] == "prod"


def test_an_ambiguous_host_is_refused_at_the_releases_line_with_the_field_that_settles_it(tmp_path):
    specs = three_hosts()
    specs["reporting"] = target()  # every host declares `analytics`
    [problem] = problems(tmp_path / "a", specs)
    assert "reporting.yaml:" in problem and "releases:" in problem
    assert "its releases' repositories are hosted by dev, prod, test" in problem
    assert "name this environment's host with `host: <environment>`" in problem
    specs["reporting"]["host"] = "staging"
    [problem] = problems(tmp_path / "b", specs)
    assert "reporting.yaml:" in problem and "host: 'staging' hosts no repositories" in problem
    specs["reporting"]["host"] = "test"
    assert load_deployment(write_specs(tmp_path / "c", specs)).hosts["reporting"] == "test"


def test_a_host_names_no_other_host_and_one_project_has_one_host(tmp_path):
    specs = three_hosts()
    specs["dev"]["host"] = "prod"
    found = problems(tmp_path / "a", specs)
    assert any("dev.yaml:" in p and "'dev' hosts repositories itself: remove `host:`" in p for p in found), found
    specs = three_hosts()
    specs["test"]["project"] = copy.deepcopy(specs["dev"]["project"])
    found = problems(tmp_path / "b", specs)
    assert any("test.yaml:" in p and "'dev' also hosts repositories in project acme-dev-proj" in p for p in found)


def test_config_names_repeat_across_hosts_but_not_within_one(tmp_path):
    specs = three_hosts()
    SpecSet(write_specs(tmp_path / "a", specs)).validate()  # `nightly`/`daily` in each: fine
    specs["analytics"] = target()
    specs["analytics"]["host"] = "prod"
    specs["analytics"]["releases"][0]["name"] = "nightly"
    specs["analytics"]["workflows"][0]["release"] = "nightly"
    found = problems(tmp_path / "b", specs)
    assert any("duplicate release config name 'nightly' (also in environment" in p for p in found), found


def test_people_run_as_runners_of_their_own_hosts_setup_only(tmp_path):
    specs = three_hosts()
    specs["dev"]["repository"]["access"] = [
        {"member": "group:eng@acme.example", "role": "editor", "run_as": ["prod/host-runner"]}
    ]
    [problem] = problems(tmp_path, specs)
    assert "dev.yaml:" in problem and "repository.access[0].run_as[0]" in problem
    assert "environment 'prod' belongs to another host's setup" in problem


def test_commands_on_one_environment_read_its_own_setup(tmp_path):
    from tests.support.cli import invoke

    directory = write_specs(tmp_path / "environments", three_hosts())
    result = invoke("explain", "prod", "--runs", "-e", str(directory), cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert "acme-prod-proj" in result.output and "acme-dev-proj" not in result.output
    result = invoke("graph", "-e", str(directory), cwd=tmp_path)
    assert result.returncode == 0, result.output
    for env in ("dev", "test", "prod"):  # each host's own agent, in its own project
        assert f'"Dataform service agent (acme-{env}-proj)"' in result.output
