"""`dfinfra explain --deployer`: what whoever applies each environment needs, where, and the narrowest roles."""

from dataform_infra.access import roles
from dataform_infra.deployer import deployer_needs, deployer_table
from dataform_infra.specset import SpecSet
from tests.specs import host, target, write_specs
from tests.support.specsets import SPEC_SETS


def needs(ws: SpecSet, env: str) -> dict[str, tuple[str, ...]]:
    return {n.resource.label: n.roles for n in deployer_needs(ws, env)}


def test_a_targets_deployer_needs_rights_in_the_host_project_and_repository_too():
    ws = SpecSet(SPEC_SETS["shipped"])
    prod = needs(ws, "prod")
    assert prod["project acme-analytics-staging"] == ("roles/resourcemanager.projectIamAdmin",)  # the Job User grant
    assert prod["repository analytics"] == ("roles/dataform.admin",)  # its configs, and `dfinfra run`
    assert "roles/iam.serviceAccountAdmin" in prod["project acme-analytics-prod"]
    # Nothing of the host's own objects: the secret and the repository's creation are staging's.
    assert "secret dataform-github-token" not in prod
    assert not [label for label in needs(ws, "staging") if "acme-analytics-prod" in label]


def test_every_listed_role_carries_the_listed_permissions():
    for spec_set in SPEC_SETS:
        ws = SpecSet(SPEC_SETS[spec_set])
        for env in ws.deployment.environments:
            for need in deployer_needs(ws, env):
                listed = [r for r in need.roles if r.startswith("roles/")]
                carried = set().union(*(roles.permissions(r) for r in listed))
                # What no role of the table carries is said so (a KMS key's IAM policy: only custom or admin
                # roles outside the table), and that is checked too.
                uncarried = set(need.permissions) - carried
                assert all(not roles.narrowest_roles({p}) for p in uncarried), (spec_set, env, need)
                assert len(need.roles) - len(listed) == len(uncarried), (spec_set, env, need)
    # That every permission the registry names is one Google's role table knows: tests/test_resource_types.py.


def test_granting_the_repository_role_from_the_host_spec_is_suggested_then_recognised(tmp_path):
    deployer = "serviceAccount:prod-ci@acme-ci-proj.iam.gserviceaccount.com"
    t = target()
    t["deployers"] = [deployer]
    ws = SpecSet(write_specs(tmp_path / "a", {"staging": host(), "prod": t}))
    text = deployer_table(ws, ["prod"])
    assert f'`repository.access: [{{member: "{deployer}", role: admin}}]`' in text
    h = host()
    h["repository"]["access"] = [{"member": deployer, "role": "admin"}]
    ws = SpecSet(write_specs(tmp_path / "b", {"staging": h, "prod": t}))
    assert "repository.access" not in deployer_table(ws, ["prod"])
    repository = next(n for n in deployer_needs(ws, "prod") if n.resource.kind == "repository")
    assert repository.granted_by_dfinfra == ("roles/dataform.admin",)
