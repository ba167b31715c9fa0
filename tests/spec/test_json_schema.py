"""The JSON Schema editors use (schema/environment.schema.json) is the models' own, and every shipped
spec names it on its first line and validates against it."""

import json
import os

import jsonschema
import pytest
import yaml

from dataform_infra.spec.models import Environment
from tests.support.specsets import REPO, SPEC_SETS

SCHEMA_FILE = REPO / "schema" / "environment.schema.json"
SPECS = sorted(p for directory in SPEC_SETS.values() for p in directory.glob("*.yaml"))


def test_shipped_schema_is_generated_from_the_models():
    generated = json.loads(json.dumps(Environment.model_json_schema(by_alias=True), sort_keys=True))
    assert json.loads(SCHEMA_FILE.read_text()) == generated, "regenerate: python -m tests.support.generated"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_spec_declares_and_satisfies_the_schema(spec):
    first_line = spec.read_text().splitlines()[0]
    relative = os.path.relpath(SCHEMA_FILE, spec.parent)
    assert first_line == f"# yaml-language-server: $schema={relative}"
    jsonschema.validate(yaml.safe_load(spec.read_text()), json.loads(SCHEMA_FILE.read_text()))


def test_the_schema_rejects_what_the_models_reject():
    schema = json.loads(SCHEMA_FILE.read_text())
    spec = yaml.safe_load((REPO / "environments" / "prod.yaml").read_text())
    spec["unknown_field"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)
