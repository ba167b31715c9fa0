"""`dfinfra init`: a commented staging + prod pair of specs from a few answers.

The files are written only after the pair validates (the same loader every command uses), so a
new user's first `dfinfra render --all` works; existing files are never overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, fields
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


def _yaml(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML): every answer lands in the spec as one string."""
    return json.dumps(value, ensure_ascii=False)


def spec_texts(answers: Answers, schema_ref: str) -> dict[str, str]:
    """staging.yaml and prod.yaml from `templates/init/`, each answer quoted by the `yaml` filter."""
    import jinja2

    from dataform_infra.render.engine import templates_dir

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML: the filter quotes every value
    )
    env.filters["yaml"] = _yaml
    values = {
        **{f.name: getattr(answers, f.name) for f in fields(answers)},
        "uses_ssh": answers.uses_ssh,
        "bigquery_location": answers.bigquery_location,
        "provider": CURRENT_PROVIDER,
        "schema_ref": schema_ref,
    }
    return {name: env.get_template(f"init/{name}.j2").render(values) for name in ("staging.yaml", "prod.yaml")}


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
    texts = spec_texts(answers, schema_ref)
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


def gitignore(root: Path) -> Path | None:
    """Writes root/.gitignore for dfinfra's and terraform's working files, unless one exists."""
    path = root / ".gitignore"
    if path.exists() or path.is_symlink():
        return None
    from dataform_infra.render.engine import templates_dir

    path.write_text((templates_dir() / "init" / "gitignore").read_text(encoding="utf-8"))
    return path
