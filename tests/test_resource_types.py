"""The resource-type registry agrees with the provider's own facts, and its readings of state values are right."""

import json
import re

import pytest

from dataform_infra import resource_types as types
from dataform_infra.access import roles
from tests.support.specsets import REPO

FACTS = REPO / "tests/provider_schema/8.7.0"  # the current line's facts (rendered HCL is checked against both)
SCHEMA = json.loads((FACTS / "schema.json").read_text())["provider_schemas"]
CONSTRAINTS = json.loads((FACTS / "constraints.json").read_text())


def _schema(type_: types.ResourceType) -> dict:
    provider = SCHEMA[f"registry.terraform.io/hashicorp/{type_.provider}"]
    kind = "data_source_schemas" if type_.mode == "data" else "resource_schemas"
    assert type_.name in provider[kind], f"{type_.name} is not served by {type_.provider} ({type_.mode})"
    return provider[kind][type_.name]["block"]


@pytest.mark.parametrize("type_", [t for t in types.ALL if t.rendered], ids=lambda t: t.name)
def test_each_type_is_served_by_the_provider_it_names(type_):
    _schema(type_)


@pytest.mark.parametrize("type_", [t for t in types.ALL if t.identity or t.target], ids=lambda t: t.name)
def test_identity_and_target_attributes_are_the_types_own(type_):
    attributes = set(_schema(type_)["attributes"])
    named = set(type_.identity) | ({type_.target.attribute} if type_.target else set())
    assert named <= attributes, named - attributes


@pytest.mark.parametrize("type_", [t for t in types.ALL if t.import_id], ids=lambda t: t.name)
def test_import_ids_are_a_format_the_provider_imports(type_):
    provider = CONSTRAINTS[f"registry.terraform.io/hashicorp/{type_.provider}"]["resource"]
    formats = provider[type_.name]["x_identity"]["import_formats"]
    example = {name: f"x{name}" for name in re.findall(r"{(\w+)}", type_.import_id)}
    if "email" in example:
        example["email"] = "sa@p.iam.gserviceaccount.com"
    imported = type_.import_id_of(**example)
    as_template = type_.import_id.replace("{", "{{").replace("}", "}}")
    # Either a template the provider lists, or (service accounts) a pattern it matches.
    assert as_template in formats or any(re.fullmatch(f, imported) for f in formats if f.startswith("^")), formats


# Permissions no role in ../shared/iam/roles.json carries (roles/cloudkms.admin does, and is not in it): a gap
# in the facts, reported in the closing note; explain --deployer says "no predefined role in the table".
# Permissions Google's role table (shared/iam/roles.json) holds no role for: KMS IAM, and the admin roles of
# Workflows, Eventarc and Cloud Scheduler (roles/workflows.editor, roles/eventarc.admin, roles/cloudscheduler.admin).
NOT_IN_THE_ROLE_TABLE = {
    "cloudkms.cryptoKeys.getIamPolicy",
    "cloudkms.cryptoKeys.setIamPolicy",
    *(
        f"{service}.{collection}.{verb}"
        for service, collection in (("workflows", "workflows"), ("eventarc", "triggers"), ("cloudscheduler", "jobs"))
        for verb in ("create", "get", "update", "delete")
    ),
}


def test_every_deployer_permission_is_one_googles_role_table_knows():
    table = json.loads((REPO / "dataform_infra/data/roles.json").read_text())["roles"]
    known = set().union(*(roles.permissions(r) for r in table)) | NOT_IN_THE_ROLE_TABLE
    for type_ in types.ALL:
        for _, permissions in type_.deployer:
            assert set(permissions) <= known, type_.name
    assert not NOT_IN_THE_ROLE_TABLE & set().union(*(roles.permissions(r) for r in table)), "the gap is closed"


def test_each_kind_of_object_has_one_iam_member_type_and_a_full_name():
    assert set(types.IAM_MEMBER_OF) <= set(types.FULL_NAMES)
    assert len({t.name for t in types.IAM_MEMBER_OF.values()}) == len(types.IAM_MEMBER_OF)
    assert types.full_name("repository", "p", "r", "europe-west1") == (
        "//dataform.googleapis.com/projects/p/locations/europe-west1/repositories/r"
    )


@pytest.mark.parametrize(
    ("type_", "attrs", "located"),
    [
        # As configured (a short id and the project beside it) and as the provider stores it once applied.
        (types.SECRET_IAM_MEMBER, {"secret_id": "git", "project": "p"}, ("p", "git", "")),
        (types.SECRET_IAM_MEMBER, {"secret_id": "projects/q/secrets/git", "project": "p"}, ("q", "git", "")),
        (types.REPOSITORY_IAM_MEMBER, {"repository": "r", "project": "p", "region": "eu"}, ("p", "r", "eu")),
        (
            types.REPOSITORY_IAM_MEMBER,
            {"repository": "projects/q/locations/us/repositories/r", "region": "eu"},
            ("q", "r", "us"),
        ),
        (types.BIGQUERY_DATASET_IAM_MEMBER, {"dataset_id": "d", "project": "p"}, ("p", "d", "")),
        (types.PROJECT_IAM_MEMBER, {"project": "p"}, ("p", "p", "")),
        (
            types.SERVICE_ACCOUNT_IAM_MEMBER,
            {"service_account_id": "projects/-/serviceAccounts/run@q.iam.gserviceaccount.com"},
            ("q", "run@q.iam.gserviceaccount.com", ""),
        ),
        # A reference not yet resolved names no account.
        (types.SERVICE_ACCOUNT_IAM_MEMBER, {"service_account_id": "${google_service_account.x.name}"}, None),
    ],
)
def test_an_iam_member_locates_the_object_it_grants_on(type_, attrs, located):
    assert type_.target.locate(attrs) == located


def test_no_module_but_the_registry_spells_a_type_it_knows():
    """The registry is the one home of each type's name: other modules ask it (templates print HCL, and
    the docstrings and messages that name a type for a reader are not counted)."""
    names = "|".join(re.escape(t.name) for t in sorted(types.ALL, key=lambda t: -len(t.name)))
    spelled = re.compile(r'(?<![\w`])f?"(' + names + r')(["{.])')
    offenders = []
    for path in sorted((REPO / "dataform_infra").rglob("*.py")):
        if path.name == "resource_types.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if spelled.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
