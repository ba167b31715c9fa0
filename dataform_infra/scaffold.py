"""`dfinfra init`: a commented staging + prod pair of specs from a few answers.

The files are written only after the pair validates (the same loader every command uses), so a
new user's first `dfinfra render --all` works; existing files are never overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dataform_infra.errors import SpecError, UsageError
from dataform_infra.spec.formats import CURRENT_PROVIDER
from dataform_infra.spec.loader import load_deployment

SCHEMA_FILE = "environment.schema.json"


@dataclass(frozen=True)
class Answers:
    host_project: str
    host_number: str
    prod_project: str
    prod_number: str
    region: str
    git_url: str
    deployer: str
    repository: str = "analytics"
    ssh_host_key: str | None = None

    @property
    def uses_ssh(self) -> bool:
        return not self.git_url.startswith("https://")

    @property
    def bigquery_location(self) -> str:
        return "EU" if self.region.startswith("europe-") else "US" if self.region.startswith("us-") else self.region


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def _git_block(a: Answers) -> str:
    if a.uses_ssh:
        return (
            f"    url: {_q(a.git_url)}\n"
            "    default_branch: main\n"
            "    ssh:\n"
            "      # Add the private key with: dfinfra secret set staging < ~/.ssh/dataform_deploy_key\n"
            "      secret_id: dataform-git-ssh-key\n"
            f"      host_public_key: {_q(a.ssh_host_key or '')}\n"
        )
    return (
        f"    url: {_q(a.git_url)}\n"
        "    default_branch: main\n"
        "    https_token:\n"
        "      # Add the token with: dfinfra secret set staging   (read from stdin, never stored elsewhere)\n"
        "      secret_id: dataform-git-token\n"
        "      version: latest   # rotation needs no HCL change\n"
    )


def staging_yaml(a: Answers, schema_ref: str) -> str:
    return f"""# yaml-language-server: $schema={schema_ref}
# Staging hosts the Dataform repository (prod's release and workflow configs live in it too).
project:
  id: {_q(a.host_project)}
  number: {_q(a.host_number)}
region: {_q(a.region)}
bigquery_location: {_q(a.bigquery_location)}
state:
  bucket: {_q(a.host_project + "-tfstate")}   # created by: dfinfra bootstrap staging
  prefix: dataform/staging
provider_version: {_q(CURRENT_PROVIDER)}   # hashicorp/google and -beta: the current line, pinned here

# Who runs Terraform. Gets act-as on the runner accounts the Dataform configs attach (strict act-as).
deployers:
  - {_q(a.deployer)}

repository:
  name: {_q(a.repository)}
  git:
{_git_block(a)}  workspace_compilation:
    default_database: {_q(a.host_project)}   # the project workspaces write (else workflow_settings.yaml's)
    schema_suffix: dev      # development workspaces never write production tables
    # The datasets your code writes by default (workflow_settings.yaml's defaultDataset and
    # defaultAssertionDataset): workspace runs write them as marts_dev and dataform_assertions_dev.
    schemas: [marts, dataform_assertions]
  runner: dataform-staging
  # People, and who may start runs as which runner (strict act-as: actAs on exactly that runner).
  # Giving someone run_as on the repository's runner enables workspace runs: then declare marts_dev and
  # dataform_assertions_dev under `datasets:` and add them to the runner's `writes` (validate says so).
  access: []                # e.g. - {{member: "group:analytics@example.com", role: editor, run_as: [dataform-staging]}}

datasets:
  - id: staging_marts
    description: Dataform models (staging)
  - id: staging_assertions
    description: Dataform assertion results (staging)

runners:
  - name: dataform-staging
    bigquery:
      writes: [staging_marts, staging_assertions]
      reads: []             # datasets other teams load, declared above with create: false

releases:
  - name: staging-nightly
    git_ref: main
    cron: "30 6 * * *"
    time_zone: Etc/UTC
    compilation:
      schema: staging_marts
      assertion_schema: staging_assertions

workflows:
  - name: staging-daily
    release: staging-nightly
    runner: dataform-staging
    cron: "45 6 * * *"      # after the release compiles
    time_zone: Etc/UTC
"""


def prod_yaml(a: Answers, schema_ref: str) -> str:
    return f"""# yaml-language-server: $schema={schema_ref}
# Prod: its module creates its runner, datasets, grants and its release and workflow configs, in the
# staging-hosted repository. Apply staging first: dfinfra apply --all does.
project:
  id: {_q(a.prod_project)}
  number: {_q(a.prod_number)}
region: {_q(a.region)}
bigquery_location: {_q(a.bigquery_location)}
state:
  bucket: {_q(a.prod_project + "-tfstate")}   # created by: dfinfra bootstrap prod
  prefix: dataform/prod
provider_version: {_q(CURRENT_PROVIDER)}
protected: true             # apply and destroy ask for the environment's name

# Who runs Terraform for prod: act-as on the runner prod's configs attach (strict act-as).
# `dfinfra explain --deployer prod` lists everything else it needs, in both projects.
deployers:
  - {_q(a.deployer)}

datasets:
  - id: marts
    description: Dataform models (production)
  - id: dataform_assertions
    description: Dataform assertion results (production)

runners:
  - name: dataform-prod
    bigquery:
      writes: [marts, dataform_assertions]

releases:
  - name: prod-nightly
    git_ref: main
    cron: "30 6 * * *"
    time_zone: Etc/UTC
    compilation:
      schema: marts
      assertion_schema: dataform_assertions

workflows:
  - name: prod-daily
    release: prod-nightly
    runner: dataform-prod
    cron: "45 6 * * *"
    time_zone: Etc/UTC
"""


def ensure_free(directory: Path) -> None:
    """Refuse before asking anything when the directory already holds specs."""
    existing = sorted(directory.glob("*.y*ml")) if directory.is_dir() else []
    if existing:
        raise UsageError(f"refusing to overwrite: {directory} already holds {', '.join(p.name for p in existing)}")


def scaffold(directory: Path, answers: Answers) -> list[Path]:
    """Writes staging.yaml, prod.yaml and the JSON Schema they name into `directory`, after validating
    the pair; returns the paths written."""
    from dataform_infra.spec.models import Environment

    schema_ref = f"./{SCHEMA_FILE}"
    ensure_free(directory)
    targets = [directory / "staging.yaml", directory / "prod.yaml"]
    texts = {"staging.yaml": staging_yaml(answers, schema_ref), "prod.yaml": prod_yaml(answers, schema_ref)}
    with tempfile.TemporaryDirectory() as scratch:
        trial = Path(scratch) / "environments"  # `directory` may be `.`, whose name is empty
        trial.mkdir()
        for name, text in texts.items():
            (trial / name).write_text(text, encoding="utf-8")
        try:
            load_deployment(trial)
        except SpecError as error:
            problems = "; ".join(p.message for p in error.problems)
            raise UsageError(f"those answers do not make a valid spec: {problems}") from None
        directory.mkdir(parents=True, exist_ok=True)
        for name in texts:
            shutil.copyfile(trial / name, directory / name)
    schema = directory / SCHEMA_FILE
    # Replaced, never written through: a symlink there (to a shared schema, or anywhere) is left alone.
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{SCHEMA_FILE}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(Environment.model_json_schema(by_alias=True), indent=2, sort_keys=True) + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, schema)
    return [*targets, schema]


GITIGNORE = """# dfinfra's bookkeeping (saved plans, logs) and terraform's working files: never commit them.
build/**/.dfinfra/
.terraform/
"""


def gitignore(root: Path) -> Path | None:
    """Writes root/.gitignore for dfinfra's and terraform's working files, unless one exists."""
    path = root / ".gitignore"
    if path.exists() or path.is_symlink():
        return None
    path.write_text(GITIGNORE)
    return path
