"""Spec validation: every mistake is located (file, field path, line) and nothing passes silently."""

import re
from pathlib import Path

import pytest
import yaml

from dataform_infra.errors import SpecError, UsageError
from dataform_infra.spec.loader import load_deployment
from tests.specs import host, target, write_specs


def problems(directory: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_deployment(directory)
    return [p.describe() for p in info.value.problems]


def only_problem(directory: Path) -> str:
    found = problems(directory)
    assert len(found) == 1, found
    return found[0]


def test_valid_pair_loads(tmp_path):
    deployment = load_deployment(write_specs(tmp_path, {"staging": host(), "prod": target()}))
    assert deployment.host_name == "staging"
    assert sorted(deployment.environments) == ["prod", "staging"]
    assert deployment.warnings == []


def test_unknown_key_names_file_path_and_line(tmp_path):
    text = (
        "project:\n  id: acme-host-proj\n  number: 111111111111\n  nmber: 1\n"
        "region: europe-west2\nbigquery_location: EU\nstate: {bucket: acme-host-tfstate}\n"
    )
    message = only_problem(write_specs(tmp_path, {"solo": text}))
    assert message.startswith(f"{tmp_path / 'solo.yaml'}:4: project.nmber: unknown field")


def test_wrong_type_says_what_it_got(tmp_path):
    spec = host()
    spec["protected"] = "yes please"
    message = only_problem(write_specs(tmp_path, {"staging": spec}))
    assert "protected: Input should be a valid boolean" in message
    assert "got str: 'yes please'" in message


def test_missing_field_points_at_parent_line(tmp_path):
    spec = host()
    del spec["state"]["bucket"]
    message = only_problem(write_specs(tmp_path, {"staging": spec}))
    assert "state.bucket: required field is missing" in message
    assert "staging.yaml:" in message


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda s: s["project"].update(id="Acme_Prod"), "project.id: 'Acme_Prod' is not valid: a project id"),
        (lambda s: s["project"].update(number="12ab"), "project.number: '12ab' is not valid"),
        (lambda s: s["runners"][0].update(name="Runner_1"), "runners[0].name: 'Runner_1' is not valid"),
        (lambda s: s["runners"][0].update(name="abc"), "a service account id is 6-30"),
        (lambda s: s["releases"][0].update(cron="every day"), "releases[0].cron: 'every day' is not a unix-cron"),
        (lambda s: s["releases"][0].update(time_zone="Mars/Olympus"), "is not an IANA time zone"),
        (lambda s: s["releases"][0].update(git_ref="feature..x"), "not a valid git branch"),
        (lambda s: s["deployers"].append("allUsers"), "would make the grant public"),
        (lambda s: s["deployers"].append("terraform@acme.iam"), "is not an IAM principal"),
        (
            lambda s: s["repository"]["git"].update(ssh={"secret_id": "k", "host_public_key": "ssh-ed25519 AAAA"}),
            "set exactly one of https_token, ssh or repository_link",
        ),
        (lambda s: s["repository"]["git"].pop("https_token"), "set exactly one of https_token, ssh or repository_link"),
        (lambda s: s["repository"]["git"].update(url="git@github.com:acme/a.git"), "must be an https:// URL"),
        (
            lambda s: s["repository"]["git"].update(url="https://source.developers.google.com/p/x/r/y"),
            "Cloud Source Repositories",
        ),
        (lambda s: s["repository"].update(deletion_policy="NUKE"), "repository.deletion_policy"),
        (
            lambda s: s["labels"].update({"Team": "x"}) if "labels" in s else s.update(labels={"Team": "x"}),
            "label keys are",
        ),
        (
            lambda s: s["runners"][0]["bigquery"].update(project_wide=[{"role": "admin", "reason": "x"}]),
            "String should have at least 10 characters",
        ),
        (
            lambda s: s["runners"][0]["bigquery"].update(project_wide=[{"role": "owner", "reason": "because I can"}]),
            "project_wide[0].role",
        ),
    ],
)
def test_what_google_would_reject_is_rejected_with_its_field(tmp_path, mutate, fragment):
    spec = host()
    mutate(spec)
    message = only_problem(write_specs(tmp_path, {"staging": spec}))
    assert fragment in message
    assert ".yaml:" in message  # every problem carries its line


@pytest.mark.parametrize(
    ("mutate_host", "mutate_target", "fragment"),
    [
        (lambda h: h["workflows"][0].update(release="nope"), None, "release 'nope' is not declared"),
        (None, lambda t: t["workflows"][0].update(runner="other-runner"), "runner 'other-runner' is not declared"),
        (lambda h: h["runners"][0]["bigquery"].update(writes=["ghost"]), None, "dataset 'ghost' is not declared"),
        (
            None,
            lambda t: (t["releases"][0].update(name="host-release"), t["workflows"][0].update(release="host-release")),
            "duplicate release config name 'host-release'",
        ),
        (None, lambda t: t["workflows"][0].update(name="host-daily"), "duplicate workflow config name 'host-daily'"),
        (
            None,
            lambda t: t.update(
                project={"id": "acme-host-proj", "number": 111111111111},
                repository={"name": "x", "git": {"url": "https://g.com/a/b", "https_token": {"secret_id": "t"}}},
            ),
            "also hosts repositories in project acme-host-proj",
        ),
        (
            None,
            lambda t: t.update(state={"bucket": "acme-host-tfstate", "prefix": "dataform/host"}),
            "state gs://acme-host-tfstate/dataform/host is also used",
        ),
        (lambda h: h["runners"].append({"name": "host-runner"}), None, "duplicate runner 'host-runner'"),
        (lambda h: h["repository"].update(runner="ghost-runner"), None, "repository.runner: runner 'ghost-runner'"),
        (lambda h: h["runners"][0]["bigquery"].update(reads=["marts"]), None, "listed in both writes and reads"),
    ],
)
def test_cross_environment_mistakes(tmp_path, mutate_host, mutate_target, fragment):
    h, t = host(), target()
    if mutate_host:
        mutate_host(h)
    if mutate_target:
        mutate_target(t)
    message = only_problem(write_specs(tmp_path, {"staging": h, "prod": t}))
    assert fragment in message
    assert ".yaml:" in message


def test_no_host_is_an_error(tmp_path):
    assert "no environment declares a repository" in only_problem(write_specs(tmp_path, {"prod": target()}))


def test_shared_project_cannot_share_a_runner(tmp_path):
    t = target()
    t["project"] = host()["project"]
    t["runners"][0]["name"] = "host-runner"
    t["workflows"][0]["runner"] = "host-runner"
    t["datasets"] = [{"id": "marts", "create": False}, {"id": "assertions", "create": False}]
    message = only_problem(write_specs(tmp_path, {"staging": host(), "prod": t}))
    assert "runner 'host-runner' is also declared by environment" in message


def test_all_problems_of_all_files_are_reported_together(tmp_path):
    h, t = host(), target()
    h["region"] = "Europe"
    t["bigquery_location"] = 7
    found = problems(write_specs(tmp_path, {"staging": h, "prod": t}))
    assert len(found) == 2
    assert any("staging.yaml" in p and "region" in p for p in found)
    assert any("prod.yaml" in p and "bigquery_location" in p for p in found)


def test_bad_file_name_is_an_error(tmp_path):
    assert "not a valid environment name" in only_problem(write_specs(tmp_path, {"Prod Env": host()}))


def test_missing_directory_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no environments directory"):
        load_deployment(tmp_path / "nope")
    with pytest.raises(UsageError, match="holds no environment files"):
        load_deployment(tmp_path)


def test_workflow_before_its_release_warns(tmp_path):
    h = host()
    h["workflows"][0]["cron"] = "0 6 * * *"
    deployment = load_deployment(write_specs(tmp_path, {"staging": h}))
    [warning] = deployment.warnings
    assert "workflows[0].cron" in warning.describe()
    assert "before its release compiles" in warning.describe()


def test_a_workflow_that_fires_before_its_release_in_summer_only_warns_naming_both_lines(tmp_path):
    """#23: release 06:30 Etc/UTC, workflow 06:45 Europe/London: staggered in winter, 05:45 UTC in summer."""
    h = host()
    h["releases"][0] |= {"cron": "30 6 * * *", "time_zone": "Etc/UTC"}
    h["workflows"][0] |= {"cron": "45 6 * * *", "time_zone": "Europe/London"}
    deployment = load_deployment(write_specs(tmp_path, {"staging": h}))
    [warning] = [w.describe() for w in deployment.warnings if "before its release" in w.describe()]
    release_line = deployment.sources["staging"].line_of(("releases", 0, "cron"))
    workflow_line = deployment.sources["staging"].line_of(("workflows", 0, "cron"))
    assert f"staging.yaml:{workflow_line}: workflows[0].cron:" in warning
    assert "first fires at Mon 05:45 UTC, before its release compiles at Mon 06:30 UTC" in warning
    assert "Europe/London at UTC+01:00, as from 29 Mar" in warning
    assert f"(release 'host-release': '30 6 * * *' Etc/UTC, line {release_line})" in warning


@pytest.mark.parametrize(
    ("constraint", "fragment"),
    [
        ("~> 6.0", "before 7.45"),
        ("= 7.44.0", "before 7.45"),
        (">= 7.45", "after 8.x"),
        ("~> 9.0", "after 8.x"),
        ("~> 8", "after 8.x"),
        ("> 8.0, < 7.50", "admits no version"),
        ("> 8.7.0, <= 8.7.0", "admits no version"),
    ],
)
def test_a_provider_version_outside_the_lines_dfinfra_covers_is_refused_at_its_line(tmp_path, constraint, fragment):
    """#24: 7.45 and later 7.x, and 8.x, are covered (facts, HCL, offline cloud); anything else is refused."""
    h = host()
    h["provider_version"] = constraint
    message = only_problem(write_specs(tmp_path, {"staging": h}))
    assert "provider_version" in message and fragment in message and re.search(r"staging\.yaml:\d+:", message)


@pytest.mark.parametrize("constraint", ["~> 8.7", "~> 7.45", ">= 7.45, < 9", "= 8.7.0", "~> 8.0"])
def test_the_covered_provider_lines_load(tmp_path, constraint):
    h = host()
    h["provider_version"] = constraint
    assert load_deployment(write_specs(tmp_path, {"staging": h})).environments["staging"].provider_version == constraint


def test_project_wide_opt_in_warns_with_reason(tmp_path):
    h = host()
    h["runners"][0]["bigquery"]["project_wide"] = [{"role": "dataOwner", "reason": "manages authorized views"}]
    [warning] = load_deployment(write_specs(tmp_path, {"staging": h})).warnings
    assert "roles/bigquery.dataOwner on the whole project" in warning.describe()
    assert "manages authorized views" in warning.describe()


def test_project_number_may_be_quoted_or_not(tmp_path):
    h = host()
    h["project"]["number"] = "111111111111"
    deployment = load_deployment(write_specs(tmp_path, {"staging": h}))
    assert deployment.host.project.number == "111111111111"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_zone", "Europe", "'Europe' is not an IANA time zone"),  # a directory of tzdata
        ("time_zone", "A" * 5000, "is not an IANA time zone"),  # too long for a file name
        ("time_zone", "posixrules", "'posixrules' is not an IANA time zone"),
    ],
)
def test_plausible_time_zone_typos_are_located_problems(tmp_path, field, value, message):
    t = target()
    t["releases"][0][field] = value
    problem = only_problem(write_specs(tmp_path, {"staging": host(), "prod": t}))
    assert "prod.yaml:" in problem and "releases[0].time_zone" in problem and message in problem


def test_a_date_looking_git_ref_stays_the_text_written(tmp_path):
    text = yaml.safe_dump(target(), sort_keys=False).replace("git_ref: main", "git_ref: 2024-13-45")
    deployment = load_deployment(write_specs(tmp_path, {"staging": host(), "prod": text}))
    assert deployment.environments["prod"].releases[0].git_ref == "2024-13-45"


def test_a_huge_integer_is_a_located_problem_not_a_traceback(tmp_path):
    text = yaml.safe_dump(target(), sort_keys=False).replace("222222222222", "9" * 5000)
    problem = only_problem(write_specs(tmp_path, {"staging": host(), "prod": text}))
    assert "prod.yaml:3: project.number: number has 5000 digits (at most 30)" in problem


def test_names_differing_only_in_case_or_punctuation_are_refused(tmp_path):
    t = target()
    t["datasets"].append({"id": "Marts"})
    problem = only_problem(write_specs(tmp_path / "a", {"staging": host(), "prod": t}))
    assert "prod.yaml:" in problem and "datasets[2].id: 'Marts' and 'marts' differ only in case" in problem
    t = target()
    t["releases"][0]["name"] = "host_release"  # the host has `host-release`
    t["workflows"][0]["release"] = "host_release"
    problem = only_problem(write_specs(tmp_path / "b", {"staging": host(), "prod": t}))
    assert "'host-release' and 'host_release' differ only in case or punctuation" in problem


@pytest.mark.parametrize("version", [0, -5])
def test_secret_versions_start_at_one(tmp_path, version):
    h = host()
    h["repository"]["git"]["https_token"]["version"] = version
    problem = only_problem(write_specs(tmp_path, {"staging": h}))
    assert "repository.git.https_token.version" in problem and "greater than or equal to 1" in problem


@pytest.mark.parametrize("cron", ["30 6 * *\n*", "30\u00a06 * * *", "30\t6 * * *"])
def test_crons_with_hidden_separators_are_refused(tmp_path, cron):
    t = target()
    t["releases"][0]["cron"] = cron
    problem = only_problem(write_specs(tmp_path, {"staging": host(), "prod": t}))
    assert "releases[0].cron" in problem and "plain ASCII fields separated by spaces" in problem


def test_spec_files_are_found_whatever_the_suffix_case(tmp_path):
    directory = write_specs(tmp_path / "e", {"staging": host()})
    (directory / "staging.yaml").rename(directory / "staging.YAML")
    assert list(load_deployment(directory).environments) == ["staging"]


def test_fifos_dangling_links_and_links_outside_are_refused_not_skipped(tmp_path):
    import os

    directory = write_specs(tmp_path / "e", {"staging": host()})
    os.mkfifo(directory / "pipe.yaml")
    (directory / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    outside = write_specs(tmp_path / "elsewhere", {"prod": target()}) / "prod.yaml"
    (directory / "prod.yaml").symlink_to(outside)
    found = problems(directory)
    assert any("pipe.yaml" in p and "not a regular file" in p for p in found)
    assert any("gone.yaml" in p and "dangling symbolic link" in p for p in found)
    assert any("prod.yaml" in p and "links outside" in p for p in found)


@pytest.mark.parametrize(
    ("mutate", "where", "message"),
    [
        (
            lambda h: h["runners"][0]["bigquery"]["writes"].append("marts"),
            "runners[0].bigquery.writes[2]",
            "duplicate dataset 'marts'",
        ),
        (lambda h: h["deployers"].append(h["deployers"][0]), "deployers[1]", "duplicate deployer"),
        (lambda h: h["workflows"][0].update(tags=["a", "a"]), "workflows[0].tags[1]", "duplicate tag 'a'"),
    ],
)
def test_duplicate_list_entries_are_refused_not_rendered_twice(tmp_path, mutate, where, message):
    h = host()
    mutate(h)
    problem = only_problem(write_specs(tmp_path, {"staging": h}))
    assert where in problem and message in problem


def test_a_number_with_a_leading_zero_is_not_read_as_octal(tmp_path):
    text = yaml.safe_dump(target(), sort_keys=False).replace("222222222222", "0123456701")
    problem = only_problem(write_specs(tmp_path, {"staging": host(), "prod": text}))
    assert "project.number: 0123456701 has a leading zero" in problem and "quote it" in problem


def test_run_as_names_the_environment_when_the_runner_lives_elsewhere(tmp_path):
    h = host()
    h["repository"]["access"] = [{"member": "group:eng@acme.example", "role": "editor", "run_as": ["target-runner"]}]
    problem = only_problem(write_specs(tmp_path, {"staging": h, "prod": target()}))
    assert "for prod's runner write `prod/target-runner`" in problem


def test_an_empty_cron_says_how_to_schedule_nothing(tmp_path):
    t = target()
    t["releases"][0]["cron"] = ""
    assert "leave `cron` out" in only_problem(write_specs(tmp_path, {"staging": host(), "prod": t}))


def test_an_ssh_keyscan_line_with_its_host_name_says_what_to_drop(tmp_path):
    h = host()
    h["repository"]["git"] = {
        "url": "git@github.com:acme/analytics.git",
        "ssh": {"secret_id": "key", "host_public_key": "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0"},
    }
    assert "starts with the host name 'github.com'" in only_problem(write_specs(tmp_path, {"staging": h}))


def test_deployers_of_an_environment_that_attaches_no_runner_are_a_warning(tmp_path):
    t = target()
    assert not load_deployment(write_specs(tmp_path / "a", {"staging": host(), "prod": t})).warnings
    t["workflows"] = []
    deployment = load_deployment(write_specs(tmp_path / "b", {"staging": host(), "prod": t}))
    assert [w.describe() for w in deployment.warnings if "get nothing" in w.describe()] == [
        f"{tmp_path / 'b' / 'prod.yaml'}:9: deployers: deployers of 'prod' get nothing: dfinfra grants deployers "
        "act-as on the runners their environment's workflows (or repository) attach, and 'prod' attaches none"
    ]
