"""What the rules read and what they return: a `Fact` per `resource` or `data` block instance, attribute values
normalised (string literals unquoted, references as `${...}`), and a `Finding`.

`facts_from_module` reads them from the view-models the templates print (fast: `dfinfra validate`, before
anything is rendered); `lint.facts_from_hcl` reads any `.tf` files as Terraform does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dataform_infra.render.hcl import Expr

if TYPE_CHECKING:  # `lint` never renders: it stays free of the spec and render layers' import cost
    from dataform_infra.render.module import Module


@dataclass(frozen=True)
class Fact:
    """One `resource` or `data` block, attribute values normalised."""

    kind: Literal["resource", "data"]
    type: str
    name: str
    attrs: Mapping[str, Any]
    source: str
    comments: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        prefix = "data." if self.kind == "data" else ""
        return f"{prefix}{self.type}.{self.name}"

    def first_block(self, name: str) -> Mapping[str, Any]:
        blocks = self.attrs.get(name) or [{}]
        return blocks[0] if isinstance(blocks, list) and blocks else {}


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    source: str
    severity: Literal["violation", "warning"] = "violation"

    def describe(self) -> str:
        return f"{self.source}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class Found:
    """What a rule found, before the registry names the rule that found it."""

    message: str
    source: str
    severity: Literal["violation", "warning"] = "violation"


def _value(value: object) -> object:
    if isinstance(value, Expr):
        text = str(value)
        return text[1:-1] if text.startswith('"') else "${" + text + "}"
    return value


def facts_from_module(module: Module) -> list[Fact]:
    """Facts for what `module` renders, with spec paths as sources (for `dfinfra validate`)."""
    from dataform_infra.spec.yamlsource import dotted_path  # `lint` reads no YAML: it skips loading the parser

    where = module.spec_files[0]
    spec_files: dict[str, str] = {}
    facts: list[Fact] = []
    for api in module.apis:
        facts.append(
            Fact(
                "resource",
                api.resource_type.name,
                api.name,
                {"service": api.service, "disable_on_destroy": False},
                f"{where}: apis",
            )
        )
    for grant in module.grants:
        attrs: dict[str, Any] = {str(k): _value(v) for k, v in grant.target.items()}
        if grant.authorized:
            project, dataset = grant.authorized
            entry = {"dataset": [{"project_id": project, "dataset_id": _value(dataset)}], "target_types": ["VIEWS"]}
            attrs["dataset"] = [entry]
        else:
            attrs |= {"role": grant.role_value, str(grant.member_attribute): _value(grant.member_value)}
        comments = (f"{grant.opt_in_marker}: {grant.opt_in_reason}",) if grant.opt_in_reason else ()
        source = f"{spec_files.get(grant.env) or spec_files.setdefault(grant.env, module.spec_file(grant.env))}: "
        source += grant.spec_path
        facts.append(Fact("resource", grant.resource_type, grant.name, attrs, source, comments))
    for repo in module.repositories:
        git: dict[str, Any] = {}
        if repo.auth == "ssh":
            git["ssh_authentication_config"] = [{"user_private_key_secret_version": _value(repo.secret_version)}]
        elif repo.auth == "https_token":
            git["authentication_token_secret_version"] = _value(repo.secret_version)
        elif repo.git is not None:
            git["git_repository_link"] = repo.git.repository_link
        attrs = {"git_remote_settings": [git]} if repo.git is not None else {}
        if repo.service_account:  # the repository's own runner
            attrs["service_account"] = _value(repo.service_account)
        source = f"{where}: {dotted_path(repo.hosted.path)}"
        noted = (repo.made_elsewhere_note,) if repo.made_elsewhere_note else ()
        facts.append(Fact("resource", repo.resource_type.name, repo.name, attrs, source, noted))
    for wc in module.workflows:
        facts.append(
            Fact(
                "resource",
                wc.resource_type.name,
                wc.name,
                {"invocation_config": [{"service_account": _value(wc.service_account)}]},
                f"{where}: workflows ({wc.workflow.name})",
                (wc.made_elsewhere_note,) if wc.made_elsewhere_note else (),
            )
        )
    return facts
