"""Identity keys: one Google object, one key, whichever module declares it or state holds it."""

import pytest

from dataform_infra.errors import TerraformError
from dataform_infra.migration import Move, plan_moves
from dataform_infra.ownership import declared, state_key
from dataform_infra.specset import SpecSet
from tests.support.specsets import SPEC_SETS


@pytest.mark.parametrize("spec_set", sorted(SPEC_SETS))
def test_no_object_is_declared_by_two_modules(spec_set):
    ws = SpecSet(SPEC_SETS[spec_set])
    seen: dict[tuple, str] = {}
    for env in ws.apply_order():
        for key in declared(ws.module(env)):
            assert key not in seen, f"{key} declared by {seen.get(key)} and {env}"
            seen[key] = env


def _state_attributes(grant) -> dict:
    """What the provider records in state for a rendered grant (its arguments, references resolved)."""
    r = grant.resource
    scope = {
        "service_account": {"service_account_id": f"projects/{r.project}/serviceAccounts/{r.id}"},
        "project": {"project": r.project},
        "dataset": {"project": r.project, "dataset_id": r.id},
        "secret": {"secret_id": f"projects/{r.project}/secrets/{r.id}", "project": r.project},
        "repository": {"project": r.project, "region": r.region, "repository": r.id},
    }[r.kind]
    return {**scope, "role": grant.role, "member": grant.principal.member, "etag": "BwY="}


def test_every_rendered_grant_and_config_is_found_again_in_state():
    ws = SpecSet(SPEC_SETS["shipped"])
    for env in ws.apply_order():
        module = ws.module(env)
        keys = declared(module)
        for grant in module.grants:
            assert keys[state_key(str(grant.resource_type), _state_attributes(grant))] == grant.address
        for wc in module.workflows:
            attrs = {"project": "acme-analytics-staging", "region": "europe-west2", "repository": "analytics"}
            key = state_key("google_dataform_repository_workflow_config", {**attrs, "name": wc.workflow.name})
            assert keys[key] == f"google_dataform_repository_workflow_config.{wc.name}"
    assert state_key("google_service_account", {"account_id": "x"}) is None  # never changes owner


def _state(*entries):
    return {
        "resources": [
            {"mode": "managed", "type": t, "name": n, "instances": [{"attributes": a}]} for t, n, a in entries
        ]
    }


CONFIG = ("google_dataform_repository_workflow_config", "p", "r", "repo", "daily")
ATTRS = {"project": "p", "region": "r", "repository": "repo", "name": "daily"}


def test_moves_follow_the_declaring_module_and_an_entry_already_home_is_only_forgotten():
    owners = {CONFIG: ("prod", "google_dataform_repository_workflow_config.daily")}
    old = _state(("google_dataform_repository_workflow_config", "prod_daily", ATTRS))
    assert plan_moves({"staging": old, "prod": _state()}, owners) == [
        Move("staging", "google_dataform_repository_workflow_config.prod_daily", "prod", owners[CONFIG][1])
    ]
    home = _state(("google_dataform_repository_workflow_config", "daily", ATTRS))
    assert plan_moves({"staging": old, "prod": home}, owners) == [
        Move("staging", "google_dataform_repository_workflow_config.prod_daily", "prod", owners[CONFIG][1], forget=True)
    ]
    assert plan_moves({"prod": home}, owners) == []  # nothing to do
    assert plan_moves({"staging": old}, {}) == []  # declared nowhere: the next plan removes it, as any spec change


def test_a_destination_address_holding_another_object_stops_the_migration():
    owners = {CONFIG: ("prod", "google_dataform_repository_workflow_config.daily")}
    other = _state(("google_dataform_repository_workflow_config", "daily", {**ATTRS, "name": "other"}))
    old = _state(("google_dataform_repository_workflow_config", "prod_daily", ATTRS))
    with pytest.raises(TerraformError, match="already holds another object"):
        plan_moves({"staging": old, "prod": other}, owners)


def test_repositories_and_secrets_are_known_by_their_google_names_whatever_their_address():
    """So `dfinfra migrate` moves `google_dataform_repository.this` to the name it has now."""
    module = SpecSet(SPEC_SETS["shipped"]).module("staging")
    keys = declared(module)
    repository = {"project": "acme-analytics-staging", "region": "europe-west2", "name": "analytics", "id": "x"}
    assert keys[state_key("google_dataform_repository", repository)] == "google_dataform_repository.analytics"
    secret = {"project": "acme-analytics-staging", "secret_id": "dataform-github-token"}
    assert keys[state_key("google_secret_manager_secret", secret)] == (
        "google_secret_manager_secret.dataform_github_token"
    )
    old = _state(("google_dataform_repository", "this", repository))
    [move] = plan_moves({"staging": old}, {state_key("google_dataform_repository", repository): ("staging", "x.y")})
    assert (move.source, move.address, move.destination, move.new_address) == (
        "staging",
        "google_dataform_repository.this",
        "staging",
        "x.y",
    )


def test_a_repository_grant_is_known_by_the_repositorys_full_name_as_the_provider_records_it():
    module = SpecSet(SPEC_SETS["shipped"]).module("staging")
    grant = next(g for g in module.grants if g.rule == "person-uses-repository")
    recorded = {
        "project": "acme-analytics-staging",
        "region": "europe-west2",
        "repository": "projects/acme-analytics-staging/locations/europe-west2/repositories/analytics",
        "role": grant.role,
        "member": grant.principal.member,
    }
    assert declared(module)[state_key(str(grant.resource_type), recorded)] == grant.address
