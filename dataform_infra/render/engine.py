"""Turn a `Module` into the text of its `.tf` files, through the Jinja templates."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from dataform_infra import MINIMUM_TERRAFORM
from dataform_infra.cache import cache_dir, make_private
from dataform_infra.render.hcl import comment, comment_block, layout, to_hcl
from dataform_infra.render.module import Module
from dataform_infra.spec.loader import Deployment

# One file per concern, in the order a reviewer reads them. Empty renders are not written.
MODULE_FILES = (
    "versions.tf",
    "providers.tf",
    "backend.tf",
    "apis.tf",
    "service_accounts.tf",
    "bigquery.tf",
    "secrets.tf",
    "iam.tf",
    "dataform.tf",
    "events.tf",
    "alerts.tf",
    "outputs.tf",
    "imports.tf",
    "moved.tf",
)


def templates_dir() -> Path:
    """Templates ship inside the wheel; in a source checkout they live at the repository root."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def _finalize(value: object) -> Markup:
    return value if isinstance(value, Markup) else Markup(to_hcl(value))


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates cached per dfinfra version: compiling them is a fifth of a render."""
    from dataform_infra import __version__

    directory = cache_dir(f"templates-{__version__}")
    if not make_private(directory):
        return None  # compiled code others could write would run as us (or a read-only home): no cache
    return jinja2.FileSystemBytecodeCache(str(directory))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Autoescape is on only so that macro output arrives as Markup and is not re-quoted;
        # `_finalize` does the real (HCL) escaping of everything else.
        autoescape=True,
    )
    env.globals["minimum_terraform"] = ".".join(map(str, MINIMUM_TERRAFORM))
    env.filters["comment"] = comment
    env.filters["comment_block"] = comment_block
    return env


def render_module(module: Module) -> dict[str, str]:
    """File name -> HCL text, `terraform fmt` clean. Files whose template renders nothing are left out."""
    env = _environment()
    files: dict[str, str] = {}
    for name in MODULE_FILES:
        text = env.get_template(f"{name}.j2").render(module=module)
        if text.strip():
            files[name] = layout(text)
    return files


STATE_VERSIONS_KEPT = 20


def render_bootstrap(deployment: Deployment, env_name: str) -> dict[str, str]:
    """The small module that creates an environment's state bucket (`dfinfra bootstrap`)."""
    env = deployment.environments[env_name]
    spec = deployment.spec_file(env_name)
    module = {
        "env_name": env_name,
        "spec_files": [f"{spec.parent.name}/{spec.name}"],
        "project": env.project.id,
        "region": env.region,
        "state_bucket": env.state.bucket,
        "provider_version": env.provider_version,
    }
    labels = {**env.labels, "managed-by": "dfinfra", "purpose": "terraform-state"}
    text = (
        _environment()
        .get_template("bootstrap/main.tf.j2")
        .render(module=module, bootstrap_labels=labels, keep_versions=STATE_VERSIONS_KEPT)
    )
    return {"main.tf": layout(text)}
