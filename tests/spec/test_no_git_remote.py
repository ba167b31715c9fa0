"""#24 false refusal: a repository with no Git remote (teams that work only in workspaces, or connect Git
later). No `git:` renders no remote and no secret; workspace runs work; a release, which compiles a Git
ref, is refused at its line until a remote is connected."""

from __future__ import annotations

import pytest

from dataform_infra.errors import SpecError
from dataform_infra.render.engine import render_module
from dataform_infra.spec.loader import load_deployment
from dataform_infra.specset import SpecSet
from tests.hcl_schema import check_module
from tests.specs import host, write_specs
from tests.support.cli import invoke


def workspaces_only() -> dict:
    """The host's repository without a remote; people run its workspaces as the host runner."""
    spec = host()
    del spec["repository"]["git"]
    spec["repository"]["runner"] = "host-runner"
    spec["repository"]["workspace_compilation"] = {
        "default_database": "acme-host-proj",
        "schema_suffix": "dev",
        "schemas": ["marts", "assertions"],
    }
    spec["repository"]["access"] = [{"member": "group:eng@acme.example", "role": "editor", "run_as": ["host-runner"]}]
    spec["datasets"] += [{"id": "marts_dev"}, {"id": "assertions_dev"}]
    spec["runners"][0]["bigquery"]["writes"] += ["marts_dev", "assertions_dev"]
    spec["releases"], spec["workflows"] = [], []
    return spec


def test_a_repository_without_a_remote_renders_no_remote_and_no_secret(tmp_path):
    ws = SpecSet(write_specs(tmp_path, {"staging": workspaces_only()}))
    report = ws.validate()
    assert report.violations == [] and ws.coverage().unserved == [] and ws.coverage().unmet == []
    files = render_module(ws.module("staging"))
    for version in ("7.45.0", "8.7.0"):
        assert check_module(files, version) == []
    text = "".join(files.values())
    assert "git_remote_settings" not in text and "google_secret_manager_secret" not in text
    assert "# No Git remote: people work in its workspaces only" in files["dataform.tf"]
    # Nothing is fetched: no Git-sync requirement, while the workspace run is still proved.
    assert not [r for r in ws.access.requirements if r.chain == "git-sync"]
    assert [r.kind for r in ws.runs()] == ["workspace"]


def test_a_release_of_a_repository_without_a_remote_is_refused_at_its_git_ref(tmp_path):
    spec = workspaces_only()
    spec["releases"] = [{"name": "nightly", "git_ref": "main", "compilation": {"has_assertions": False}}]
    with pytest.raises(SpecError) as info:
        load_deployment(write_specs(tmp_path, {"staging": spec}))
    [problem] = info.value.problems
    assert problem.line and "releases[0].git_ref" in problem.describe()
    assert "repository 'analytics' has no Git remote (no `git:`): connect one" in problem.describe()


def test_there_is_no_secret_to_set_and_the_command_says_why(tmp_path):
    write_specs(tmp_path / "environments", {"staging": workspaces_only()})
    result = invoke("secret", "set", "staging", cwd=tmp_path, stdin="ghp_x\n")
    assert result.returncode == 2, result.output
    assert "repository 'analytics' of 'staging' has no Git remote" in result.output
    assert "Traceback" not in result.output


@pytest.mark.terraform
def test_workspace_runs_work_offline_without_a_remote_and_doctor_passes(tmp_path, cloud):
    from tests.fakegcp.dataform import ApiError
    from tests.spec.test_features import applied_host

    with applied_host(tmp_path, cloud, workspaces_only(), token=False) as (ws, apis, project):
        [run] = ws.runs()
        assert apis.run_workspace("group:eng@acme.example", run.repository.api_name) == ("SUCCEEDED", [])
        # Compiling a Git ref there fails (what validate refuses a release for): it needs a remote.
        with pytest.raises(ApiError, match="has no Git remote"):
            apis.dataform.compile("group:eng@acme.example", run.repository.api_name, {"git_commitish": "main"})
        out = project.run("doctor", "staging", expect=None)
        assert "FAIL" not in out, out
        assert "git-secret" not in out and "restrictGitRemotes:analytics" not in out
