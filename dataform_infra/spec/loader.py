"""Load every environment file of a directory into one validated `Deployment`.

Environments are validated together because the important mistakes span files: a workflow
naming a runner that does not exist, an environment whose host is ambiguous, a release naming a
repository its host does not declare, a config name used twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from dataform_infra import resource_types as types
from dataform_infra.errors import Problem, SpecError, UsageError, shown
from dataform_infra.spec.cron import stagger_warning
from dataform_infra.spec.formats import CURRENT_PROVIDER, ENV_NAME_PATTERN, provider_floor, slug, topic_name
from dataform_infra.spec.models import Environment
from dataform_infra.spec.yamlsource import PathKey, YamlDocument, dotted_path, load_yaml

_ENV_NAME = re.compile(ENV_NAME_PATTERN)
SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class SpecWarning:
    """Something Google accepts but that is probably not what the user wants."""

    problem: Problem

    def describe(self) -> str:
        return self.problem.describe()


@dataclass
class Deployment:
    """Environments validated together: a spec directory, or one host and the environments whose releases
    compile its repositories (`part`). Everything that reasons about one setup (topology, access model,
    modules, live checks) is given a part, whose `host` is unambiguous."""

    environments: dict[str, Environment]
    sources: dict[str, YamlDocument]
    warnings: list[SpecWarning] = field(default_factory=list)
    hosts: dict[str, str] = field(default_factory=dict)  # environment -> the environment hosting its repositories
    _parts: dict[str, Deployment] = field(default_factory=dict, repr=False)

    @property
    def host_name(self) -> str:
        hosts = set(self.hosts.values())
        if len(hosts) != 1:  # a caller's mistake, not the user's: every loaded directory has a host
            raise ValueError(f"{len(hosts)} hosts ({', '.join(sorted(hosts))}): ask the part of one environment")
        return next(iter(hosts))

    @property
    def host(self) -> Environment:
        return self.environments[self.host_name]

    def host_names(self) -> list[str]:
        return list(dict.fromkeys(self.hosts.values()))

    def part(self, env: str) -> Deployment:
        """The setup `env` belongs to: its host and the environments whose releases compile that host's
        repositories (the whole directory when it has one host)."""
        if env not in self.hosts:
            raise UsageError(f"no environment {env!r} (found: {', '.join(self.environments)})")
        host = self.hosts[env]
        if len(self.host_names()) == 1:
            return self
        if host not in self._parts:
            names = [n for n in self.environments if self.hosts[n] == host]
            self._parts[host] = Deployment(
                {n: self.environments[n] for n in names},
                {n: self.sources[n] for n in names},
                [w for w in self.warnings if w.problem.file in {self.sources[n].file for n in names}],
                {n: host for n in names},
            )
        return self._parts[host]

    def parts(self) -> list[Deployment]:
        return [self.part(host) for host in self.host_names()]

    def spec_file(self, env_name: str) -> Path:
        return self.sources[env_name].file


def spec_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise UsageError(
            f"no environments directory at {directory}; run dfinfra where environments/ is, or pass --environments DIR"
        )
    candidates = sorted(p for p in directory.iterdir() if p.suffix.lower() in SPEC_SUFFIXES)
    problems = []
    for path in candidates:
        if path.is_symlink():
            try:
                target = path.resolve()
            except (RuntimeError, OSError):  # a loop (Python 3.11 raises RuntimeError, later ones OSError)
                problems.append(Problem(path, "", "is a symbolic link that loops back on itself"))
                continue
            if not target.exists():
                problems.append(Problem(path, "", "is a dangling symbolic link"))
            elif directory.resolve() not in target.parents:
                problems.append(
                    Problem(path, "", f"links outside {directory} (to {shown(target)}); copy the spec into {directory}")
                )
        elif not path.is_file():
            problems.append(Problem(path, "", "is not a regular file (a FIFO, device or directory)"))
    if problems:
        raise SpecError(problems)
    if not candidates:
        raise UsageError(f"{directory} holds no environment files (*.yaml)")
    return candidates


def load_deployment(directory: Path) -> Deployment:
    problems: list[Problem] = []
    environments: dict[str, Environment] = {}
    sources: dict[str, YamlDocument] = {}
    for file in spec_files(directory):
        name = file.stem
        if not _ENV_NAME.fullmatch(name):
            problems.append(
                Problem(
                    file,
                    "",
                    f"file name {name!r} is not a valid environment name "
                    "(1-30 lowercase letters, digits, '_' or '-', starting with a letter)",
                )
            )
            continue
        if name in sources:
            problems.append(Problem(file, "", f"environment {name!r} is defined twice ({sources[name].file.name})"))
            continue
        try:
            doc = load_yaml(file)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        sources[name] = doc
        try:
            environments[name] = Environment.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(_from_validation_error(doc, exc))
    if problems:
        raise SpecError(problems)
    deployment = Deployment(environments, sources)
    problems = list(_cross_checks(deployment))
    if problems:
        raise SpecError(problems)
    deployment.warnings = [w for part in deployment.parts() for w in _warnings(part)]
    deployment._parts.clear()  # built before the warnings were known
    return deployment


_UNION_MEMBER = re.compile(r"(constrained-)?(int|str|float|bool)|.*\[.*|function-.*")


def _from_validation_error(doc: YamlDocument, exc: ValidationError) -> Iterable[Problem]:
    """One problem per field: a value that fits no member of a union (`latest` or a number) is one
    problem listing what each member wanted, not one per member."""
    by_field: dict[PathKey, list[Problem]] = {}
    for problem in _each_validation_error(doc, exc):
        by_field.setdefault(problem.path_key, []).append(problem.problem)
    for found in by_field.values():
        first = found[0]
        message = " or ".join(dict.fromkeys(p.message for p in found))
        yield Problem(first.file, first.path, message, first.line)


@dataclass(frozen=True)
class _Located:
    path_key: PathKey
    problem: Problem


def _each_validation_error(doc: YamlDocument, exc: ValidationError) -> Iterable[_Located]:
    for error in exc.errors(include_url=False):
        loc: PathKey = tuple(error["loc"])
        # Pydantic appends the failing union member or validator name; they mean nothing to a user.
        loc = tuple(part for part in loc if not (isinstance(part, str) and _UNION_MEMBER.fullmatch(part)))
        message = error["msg"]
        kind = error["type"]
        if kind == "extra_forbidden":
            message = "unknown field (check the spelling; see the spec reference in README.md)"
        elif kind == "missing":
            message = "required field is missing"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        elif kind.endswith("_type"):
            message = f"{message} (got {type(error['input']).__name__}: {_short(error['input'])})"
        yield _Located(loc, Problem(doc.file, dotted_path(loc), message, doc.line_of(loc)))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Locator:
    """Builds problems pointing at a field of a given environment's file."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment

    def at(self, env: str, path: PathKey, message: str) -> Problem:
        doc = self.deployment.sources[env]
        return Problem(doc.file, dotted_path(path), message, doc.line_of(path))


def _cross_checks(deployment: Deployment) -> Iterable[Problem]:
    loc = _Locator(deployment)
    envs = deployment.environments
    for name, env in envs.items():
        if env.repository is not None and env.repositories:
            yield loc.at(name, ("repositories",), "declare `repository:` (one) or `repositories:` (several), not both")
            return
    hosts = [name for name, env in envs.items() if env.declared_repositories()]
    if not hosts:
        first = next(iter(envs))
        yield loc.at(
            first,
            (),
            "no environment declares a repository; at least one (a host) must have a `repository:` (or "
            "`repositories:`) section",
        )
        return
    assigned = list(_assign_hosts(loc, hosts, envs))
    problems = [p for p in assigned if isinstance(p, Problem)]
    if problems:
        yield from problems
        return
    deployment.hosts = dict(a for a in assigned if isinstance(a, tuple))
    for part in deployment.parts():
        yield from _repositories(loc, part.host_name, part.environments, envs)
        yield from _unique_across(loc, part.environments, "releases", "release config")
        yield from _unique_across(loc, part.environments, "workflows", "workflow config")
    for name, env in envs.items():
        if env.dataform_default_kms_key_name is None:
            continue
        key_at = ("dataform_default_kms_key_name",)
        if name not in hosts:
            yield loc.at(
                name,
                key_at,
                f"only a host ({', '.join(hosts)}) sets Dataform's default key: it applies to repositories created "
                "in its project",
            )
        elif provider_floor(env.provider_version) < (8, 0, 0):
            yield loc.at(name, key_at, _needs_provider_8(types.DATAFORM_CONFIG.name, env))
    yield from _state_backends_distinct(loc, envs)
    yield from _terraform_names_distinct(loc, envs, deployment.hosts)
    yield from _authorizing_datasets_granted_at_home(loc, envs)
    yield from _service_accounts_distinct(loc, envs)
    for name, env in envs.items():
        yield from _operations(loc, name, env)
    yield from _trigger_names_distinct(loc, envs)

    for name, env in envs.items():
        if env.protected:
            for i, declared in enumerate(env.datasets):
                if declared.delete_contents_on_destroy:
                    yield loc.at(
                        name,
                        ("datasets", i, "delete_contents_on_destroy"),
                        f"environment {name!r} is protected: destroying dataset {declared.id!r} must never drop its "
                        "tables; remove delete_contents_on_destroy (or `protected`)",
                    )
        runners = {r.name for r in env.runners}
        datasets = {d.id for d in env.datasets}
        releases = {r.name for r in env.releases}
        for i, declared in enumerate(env.datasets):
            # One dataset however it is named (`reporting` or `<this project>.reporting`).
            resolved = [_in(env, ref) for ref in declared.authorized_datasets]
            yield from _duplicates(loc, name, ("datasets", i, "authorized_datasets"), resolved, "dataset")
            for j, authorized in enumerate(declared.authorized_datasets):
                at: PathKey = ("datasets", i, "authorized_datasets", j)
                if _in(env, authorized) == _in(env, declared.id):
                    yield loc.at(name, at, f"dataset {authorized!r} cannot authorize itself")
                elif authorized not in datasets and "." not in authorized:
                    yield loc.at(
                        name, at, f"dataset {authorized!r} is not declared under `datasets:` of this environment"
                    )
                elif provider_floor(env.provider_version) < (8, 0, 0):
                    yield loc.at(
                        name,
                        at,
                        _needs_provider_8(f"an authorized dataset ({types.BIGQUERY_DATASET_ACCESS.name})", env),
                    )
        yield from _duplicates(loc, name, "runners", [r.name for r in env.runners], "runner")
        yield from _duplicates(loc, name, "datasets", [d.id for d in env.datasets], "dataset")
        yield from _duplicates(loc, name, "deployers", list(env.deployers), "deployer")
        for i, workflow in enumerate(env.workflows):
            yield from _duplicates(loc, name, ("workflows", i, "tags"), list(workflow.tags), "tag")
        for i, runner in enumerate(env.runners):
            access = runner.bigquery
            for verb in ("writes", "reads", "reads_metadata"):
                at = ("runners", i, "bigquery", verb)
                yield from _datasets_named(loc, name, at, getattr(access, verb), datasets, verb != "writes")
            covered = sorted((set(access.writes) | set(access.reads)) & set(access.reads_metadata))
            if covered:
                yield loc.at(
                    name,
                    ("runners", i, "bigquery", "reads_metadata"),
                    f"{', '.join(covered)} also listed in writes or reads, which already include reading metadata",
                )
            both = sorted(set(access.writes) & set(access.reads))
            if both:
                yield loc.at(
                    name,
                    ("runners", i, "bigquery", "reads"),
                    f"{', '.join(both)} listed in both writes and reads; writes already allows reading",
                )
            yield from _duplicates(
                loc,
                name,
                ("runners", i, "bigquery", "connections"),
                [_connection(ref) for ref in access.connections],
                "connection",
            )
            owned = [o.dataset for o in access.owns]
            yield from _duplicates(loc, name, ("runners", i, "bigquery", "owns"), owned, "dataset")
            for j, dataset in enumerate(owned):
                where = ("runners", i, "bigquery", "owns", j, "dataset")
                if dataset not in datasets:
                    yield loc.at(
                        name, where, f"dataset {dataset!r} is not declared under `datasets:` of this environment"
                    )
                elif dataset in access.writes or dataset in access.reads:
                    yield loc.at(
                        name,
                        where,
                        f"{dataset} is also in writes or reads; Data Owner already allows both: keep it in owns only",
                    )
        yield from _duplicates(loc, name, "people", [p.member for p in env.people], "member")
        for k, person in enumerate(env.people):
            for verb in ("reads", "writes"):
                yield from _datasets_named(
                    loc, name, ("people", k, verb), getattr(person, verb), datasets, verb == "reads"
                )
            both = sorted(set(person.reads) & set(person.writes))
            if both:
                yield loc.at(
                    name,
                    ("people", k, "reads"),
                    f"{', '.join(both)} listed in both writes and reads; writes already allows reading",
                )
        for i, workflow in enumerate(env.workflows):
            if workflow.release not in releases:
                yield loc.at(
                    name,
                    ("workflows", i, "release"),
                    f"release {workflow.release!r} is not declared under `releases:` of environment {name!r}",
                )
            if workflow.runner not in runners:
                yield loc.at(
                    name,
                    ("workflows", i, "runner"),
                    f"runner {workflow.runner!r} is not declared under `runners:` of environment {name!r}; "
                    "the host's Dataform service agent can only impersonate declared runners",
                )


def _assign_hosts(loc: _Locator, hosts: list[str], envs: dict[str, Environment]) -> Iterable[Problem | tuple[str, str]]:
    """Each environment's host: itself for a host; with one host, that host; with several, the one named by
    `host:` or the only one declaring the repositories its releases name."""
    repositories = {h: {r.name for _, r in envs[h].declared_repositories()} for h in hosts}
    projects: dict[str, str] = {}
    for h in hosts:
        other = projects.setdefault(envs[h].project.id, h)
        if other != h:
            where = envs[h].declared_repositories()[0][0][:1]
            yield loc.at(
                h,
                where,
                f"{other!r} also hosts repositories in project {envs[h].project.id}: one project has one Dataform "
                f"service agent and one host; list these repositories under {other!r}'s `repositories:`",
            )
    for name, env in envs.items():
        if name in hosts:
            if env.host not in (None, name):
                yield loc.at(name, ("host",), f"{name!r} hosts repositories itself: remove `host:`")
            else:
                yield (name, name)
            continue
        if env.host is not None:
            if env.host not in hosts:
                yield loc.at(
                    name, ("host",), f"{env.host!r} hosts no repositories (environments that do: {', '.join(hosts)})"
                )
            else:
                yield (name, env.host)
            continue
        if len(hosts) == 1:
            yield (name, hosts[0])
            continue
        candidates = [
            h
            for h in hosts
            if all(
                (r.repository in repositories[h]) if r.repository else len(repositories[h]) == 1 for r in env.releases
            )
        ]
        if env.releases and len(candidates) == 1:
            yield (name, candidates[0])
            continue
        why = (
            f"its releases' repositories are hosted by {', '.join(candidates)}"
            if env.releases and candidates
            else "no host declares all its releases' repositories"
            if env.releases
            else "it has no releases to tell by"
        )
        yield loc.at(
            name,
            ("releases",) if env.releases else (),
            f"several environments host repositories ({', '.join(hosts)}) and {why}: name this environment's "
            "host with `host: <environment>`",
        )


def _repositories(
    loc: _Locator, host: str, envs: dict[str, Environment], everywhere: dict[str, Environment]
) -> Iterable[Problem]:
    """Each of the host's repositories, and which one each release names (`envs`: the host's part of the
    directory, `everywhere`: all of it)."""
    declared = envs[host].declared_repositories()
    runners = {r.name for r in envs[host].runners}
    yield from _duplicates(loc, host, "repositories", [r.name for _, r in declared], "repository")
    secrets: dict[tuple[str, str], tuple[PathKey, tuple[object, ...]]] = {}
    for at, repo in declared:
        if repo.runner and repo.runner not in runners:
            yield loc.at(
                host, (*at, "runner"), f"runner {repo.runner!r} is not declared under `runners:` of this environment"
            )
        members = [a.member for a in repo.access]
        yield from _duplicates(loc, host, (*at, "access"), members, "repository access member")
        secret = repo.git_secret
        if repo.git is not None and secret is not None:
            where = (*at, "git", repo.git.auth)
            yield from _duplicates(loc, host, (*where, "replicas"), list(secret.replicas), "replica")
            # Repositories may share one secret (one token for the Git organisation); it is created once.
            shape = (repo.git.auth, secret.project, tuple(secret.replicas), secret.existing)
            key = (secret.project or envs[host].project.id, secret.secret_id)
            first = secrets.setdefault(key, (at, shape))
            if first[1] != shape:
                yield loc.at(
                    host,
                    (*where, "secret_id"),
                    f"secret {secret.secret_id!r} is also the Git secret of the repository at {dotted_path(first[0])} "
                    "with another kind, project, `replicas` or `existing`: one secret has one of each",
                )
        for k, person in enumerate(repo.access):
            yield from _duplicates(loc, host, (*at, "access", k, "run_as"), list(person.run_as), "runner")
            for j, ref in enumerate(person.run_as):
                other, _, runner_name = ref.rpartition("/")
                other = other or host
                if other in everywhere and other not in envs:
                    problem = (
                        f"environment {other!r} belongs to another host's setup: {host!r}'s repositories run as "
                        f"runners of {', '.join(envs)} (or one named by email under `runners:`)"
                    )
                elif other not in envs:
                    problem = f"no environment {other!r} (environments: {', '.join(envs)})"
                elif runner_name not in {r.name for r in envs[other].runners}:
                    problem = f"runner {runner_name!r} is not declared under `runners:` of environment {other!r}"
                    owners = [n for n, e in envs.items() if any(r.name == runner_name for r in e.runners)]
                    if owners:
                        problem += f"; for {owners[0]}'s runner write `{owners[0]}/{runner_name}`"
                else:
                    continue
                yield loc.at(host, (*at, "access", k, "run_as", j), problem)
    names = [r.name for _, r in declared]
    by_name = {r.name: r for _, r in declared}
    for name, env in envs.items():
        for i, release in enumerate(env.releases):
            compiled = by_name.get(release.repository or "") or (declared[0][1] if len(declared) == 1 else None)
            if compiled is not None and compiled.git is None:
                yield loc.at(
                    name,
                    ("releases", i, "git_ref"),
                    f"release {release.name!r} compiles Git ref {release.git_ref!r}, but repository "
                    f"{compiled.name!r} has no Git remote (no `git:`): connect one, or leave releases out until "
                    "then (people work in its workspaces meanwhile)",
                )
            if release.repository is None and len(names) > 1:
                yield loc.at(
                    name,
                    ("releases", i),
                    f"release {release.name!r} must name its repository (`repository:`): {host!r} declares "
                    f"{', '.join(names)}",
                )
            elif release.repository is not None and release.repository not in names:
                yield loc.at(
                    name,
                    ("releases", i, "repository"),
                    f"repository {release.repository!r} is not declared by the host {host!r} "
                    f"(its repositories: {', '.join(names)})",
                )


def _datasets_named(
    loc: _Locator, env: str, at: PathKey, refs: list[str], datasets: set[str], other_projects: bool
) -> Iterable[Problem]:
    """A list of datasets a runner or person names (at `at`): each once, each declared under `datasets:` unless
    `other_projects` lets it name another project's (`project-id.dataset_id`)."""
    yield from _duplicates(loc, env, at, list(refs), "dataset")
    for j, dataset in enumerate(refs):
        if dataset not in datasets and not (other_projects and "." in dataset):
            yield loc.at(env, (*at, j), f"dataset {dataset!r} is not declared under `datasets:` of this environment")


def _duplicates(
    loc: _Locator, env: str, key: str | tuple[str | int, ...], names: list[str], what: str
) -> Iterable[Problem]:
    base = key if isinstance(key, tuple) else (key,)
    seen: dict[str, int] = {}
    for i, value in enumerate(names):
        if value in seen:
            yield loc.at(env, (*base, i), f"duplicate {what} {value!r} (also at index {seen[value]})")
        seen.setdefault(value, i)


def _unique_across(loc: _Locator, envs: dict[str, Environment], key: str, what: str) -> Iterable[Problem]:
    """Config names are unique across a host's environments, even in different repositories: each keeps
    one Terraform name however the repositories and modules holding it change."""
    seen: dict[str, str] = {}
    for name, env in envs.items():
        for i, item in enumerate(getattr(env, key)):
            if item.name in seen:
                other = seen[item.name]
                where = "this environment" if other == name else f"environment {other!r}"
                yield loc.at(
                    name,
                    (key, i, "name"),
                    f"duplicate {what} name {item.name!r} (also in {where}); config names are unique across the "
                    "environments of one host",
                )
            seen.setdefault(item.name, name)


def _terraform_names_distinct(loc: _Locator, envs: dict[str, Environment], hosts: dict[str, str]) -> Iterable[Problem]:
    """Names that differ only in case or punctuation would share a Terraform resource name, and which
    one got the `_2` suffix would depend on their order in the spec: reordering would plan replacing
    both. Datasets are per module; release and workflow configs are checked across the environments of
    one host, since their names are (and a config may move between modules, as `dfinfra migrate` does)."""
    groups: list[tuple[str, list[tuple[str, int, str]]]] = []
    for name, env in envs.items():
        groups.append(("datasets", [(name, i, d.id) for i, d in enumerate(env.datasets)]))
        groups.append(("repositories", [(name, i, r.name) for i, r in enumerate(env.repositories)]))
    for host in dict.fromkeys(hosts.values()):
        part = [(name, env) for name, env in envs.items() if hosts[name] == host]
        for key in ("releases", "workflows"):
            groups.append(
                (key, [(name, i, item.name) for name, env in part for i, item in enumerate(getattr(env, key))])
            )
    for key, items in groups:
        seen: dict[str, str] = {}
        for env_name, i, value in items:
            other = seen.setdefault(slug(value), value)
            if other != value:
                yield loc.at(
                    env_name,
                    (key, i, "id" if key == "datasets" else "name"),
                    f"{value!r} and {other!r} differ only in case or punctuation; their Terraform names would "
                    "depend on the order in the spec (reordering would replace both): rename one",
                )


def _operations(loc: _Locator, name: str, env: Environment) -> Iterable[Problem]:
    """Triggers and alerts: provider 8.x types, names that exist, and one of each trigger's events."""
    old_provider = provider_floor(env.provider_version) < (8, 0, 0)
    workflows = {w.name for w in env.workflows}
    for i, workflow in enumerate(env.workflows):
        if workflow.triggers and old_provider:
            what = f"a trigger ({types.EVENTARC_TRIGGER.name}, {types.WORKFLOWS_WORKFLOW.name})"
            yield loc.at(name, ("workflows", i, "triggers"), _needs_provider_8(what, env))
        for j, trigger in enumerate(workflow.triggers):
            if trigger.topic:
                project = topic_name(env.project.id, trigger.topic).split("/")[1]
                if project != env.project.id:
                    yield loc.at(
                        name,
                        ("workflows", i, "triggers", j, "topic"),
                        f"topic {trigger.topic!r} is in another project: an Eventarc trigger's topic is in the "
                        f"trigger's own project ({env.project.id}); publish there, or declare the trigger in the "
                        "environment of that project",
                    )
        described = [t.describe() for t in workflow.triggers]
        yield from _duplicates(loc, name, ("workflows", i, "triggers"), described, "trigger")
    runners = {r.name for r in env.runners if not r.made_elsewhere}
    if env.triggered_workflows() and env.orchestrator in runners:
        yield loc.at(
            name,
            ("orchestrator",),
            f"{env.orchestrator!r} is also a runner of this environment: the orchestrator is an account of its own "
            "(it acts as the runners it starts), so name it otherwise",
        )
    if env.alerts is None:
        return
    if old_provider:
        yield loc.at(name, ("alerts",), _needs_provider_8(f"an alert ({types.MONITORING_ALERT_POLICY.name})", env))
    # Names that differ only in case or punctuation would share their Terraform names (and a token's variable).
    channels = [slug(c.name) for c in env.alerts.channels]
    yield from _duplicates(loc, name, ("alerts", "channels"), channels, "channel (by its Terraform name)")
    for j, workflow_name in enumerate(env.alerts.workflows or ()):
        if workflow_name not in workflows:
            yield loc.at(
                name,
                ("alerts", "workflows", j),
                f"workflow {workflow_name!r} is not declared under `workflows:` of environment {name!r}",
            )
    yield from _duplicates(loc, name, ("alerts", "workflows"), list(env.alerts.workflows or ()), "workflow")


def _trigger_names_distinct(loc: _Locator, envs: dict[str, Environment]) -> Iterable[Problem]:
    """Google names each trigger's workflow, Eventarc trigger and job after its workflow (`Workflow.trigger_names`):
    two with one name in one project would be one object (a 409 at apply)."""
    seen: dict[tuple[str, str], str] = {}
    for name, env in envs.items():
        for i, workflow in env.triggered_workflows():
            for j, google_name in enumerate(workflow.trigger_names()):
                key = (env.project.id, google_name)
                if key in seen:
                    yield loc.at(
                        name,
                        ("workflows", i, "triggers", j),
                        f"this trigger would be named {google_name!r} in {env.project.id}, like one of {seen[key]}: "
                        "rename one of their workflows",
                    )
                seen.setdefault(key, f"{name}'s workflows")


def _needs_provider_8(what: str, env: Environment) -> str:
    return (
        f"{what} needs provider 8.x (provider_version {env.provider_version!r}): set provider_version: "
        f"{CURRENT_PROVIDER!r}"
    )


def _connection(ref: str) -> str:
    """A connection as Google names it: its location case-blind (`EU` is `eu`)."""
    project, location, connection = ref.split(".", 2)
    return f"{project}.{location.lower()}.{connection}"


def _in(env: Environment, ref: str) -> str:
    """A dataset reference (`id`, or `project.id`) as `project.id`."""
    return ref if "." in ref else f"{env.project.id}.{ref}"


def _authorizing_datasets_granted_at_home(loc: _Locator, envs: dict[str, Environment]) -> Iterable[Problem]:
    """A dataset that authorizes views keeps its grants in its access list, made by its own module: another
    environment's google_bigquery_dataset_iam_member on it (named by `project.dataset`, or by id from another
    environment in the same project) would remove the authorization."""
    home = {(e.project.id, d.id): n for n, e in envs.items() for d in e.datasets if d.create and d.authorized_datasets}
    if not home:
        return
    for name, env in envs.items():
        named: list[tuple[PathKey, str]] = []
        for i, runner in enumerate(env.runners):
            for verb in ("writes", "reads", "reads_metadata"):
                refs = getattr(runner.bigquery, verb)
                named += [(("runners", i, "bigquery", verb, j), r) for j, r in enumerate(refs)]
            named += [
                (("runners", i, "bigquery", "owns", j, "dataset"), o.dataset)
                for j, o in enumerate(runner.bigquery.owns)
            ]
        for k, person in enumerate(env.people):
            for verb in ("reads", "writes"):
                named += [(("people", k, verb, j), r) for j, r in enumerate(getattr(person, verb))]
        for path, ref in named:
            other, _, dataset = ref.rpartition(".")
            owner = home.get((other or env.project.id, dataset))
            if owner is not None and owner != name:
                yield loc.at(
                    name,
                    path,
                    f"dataset {other or env.project.id}.{dataset} authorizes views, so its grants are entries of its "
                    f"access list, made by the module of {owner!r} (an IAM member from here would remove the "
                    f"authorization): name this principal in the spec of {owner!r} instead (a runner by `email:`, "
                    "or `people:`)",
                )


def _state_backends_distinct(loc: _Locator, envs: dict[str, Environment]) -> Iterable[Problem]:
    seen: dict[tuple[str, str], str] = {}
    for name, env in envs.items():
        key = (env.state.bucket, env.state.prefix)
        if key in seen:
            yield loc.at(
                name,
                ("state", "prefix"),
                f"state gs://{key[0]}/{key[1]} is also used by environment {seen[key]!r}; "
                "two environments sharing state would overwrite each other",
            )
        seen.setdefault(key, name)


def _service_accounts_distinct(loc: _Locator, envs: dict[str, Environment]) -> Iterable[Problem]:
    """Environments may share a project (single-project setups), but not a service account or dataset."""
    accounts: dict[str, str] = {}
    datasets: dict[str, str] = {}
    for name, env in envs.items():
        for i, runner in enumerate(env.runners):
            if runner.made_elsewhere:
                continue  # a reference: environments may name one account (one runner, two environments' configs)
            email = f"{runner.name}@{env.project.id}"
            if email in accounts and accounts[email] != name:
                yield loc.at(
                    name,
                    ("runners", i, "name"),
                    f"runner {runner.name!r} is also declared by environment {accounts[email]!r} in the same project",
                )
            accounts.setdefault(email, name)
        if env.triggered_workflows():
            email = f"{env.orchestrator}@{env.project.id}"
            if email in accounts and accounts[email] != name:
                yield loc.at(
                    name,
                    ("orchestrator",),
                    f"service account {env.orchestrator!r} is also declared by environment {accounts[email]!r} in "
                    "the same project: name this environment's orchestrator otherwise",
                )
            accounts.setdefault(email, name)
        for i, dataset in enumerate(env.datasets):
            key = f"{env.project.id}.{dataset.id}"
            if key in datasets and datasets[key] != name and dataset.create:
                yield loc.at(
                    name,
                    ("datasets", i, "id"),
                    f"dataset {key} is also declared by environment {datasets[key]!r}; "
                    "set `create: false` in all but one",
                )
            if dataset.create:
                datasets.setdefault(key, name)


def _abandoned_configs(loc: _Locator, deployment: Deployment, name: str, env: Environment) -> Iterable[SpecWarning]:
    """An abandoned config stays in Dataform, so destroying its repository without FORCE then fails."""
    repositories = {r.name: r for _, r in deployment.host.declared_repositories()}
    only = next(iter(repositories.values())) if len(repositories) == 1 else None
    releases = {r.name: r for r in env.releases}
    for key in ("releases", "workflows"):
        for i, config in enumerate(getattr(env, key)):
            release = config if key == "releases" else releases.get(config.release)
            repository = repositories.get(release.repository or "") if release else None
            repository = repository or only
            if config.deletion_policy != "ABANDON" or repository is None or repository.deletion_policy == "FORCE":
                continue
            yield SpecWarning(
                loc.at(
                    name,
                    (key, i, "deletion_policy"),
                    f"{config.name!r} is ABANDONed on destroy and stays in repository {repository.name!r}, which then "
                    f"cannot be destroyed with deletion_policy {repository.deletion_policy}: set its "
                    "`deletion_policy: FORCE` in the host's spec if it is ever to be destroyed",
                )
            )


def _warnings(deployment: Deployment) -> Iterable[SpecWarning]:
    loc = _Locator(deployment)
    for name, env in deployment.environments.items():
        for at, repository in env.declared_repositories():
            for k, access in enumerate(repository.access):
                if access.condition:
                    yield SpecWarning(
                        loc.at(
                            name,
                            (*at, "access", k, "condition"),
                            f"{access.member}'s {access.role} role holds only while condition "
                            f"{access.condition.title!r} is true: runs it starts, and its workspace work, fail "
                            "with Google's permission error while it is not",
                        )
                    )
        yield from _abandoned_configs(loc, deployment, name, env)
        attaches = env.workflows or any(r.runner for _, r in env.declared_repositories())
        if env.deployers and not attaches:
            yield SpecWarning(
                loc.at(
                    name,
                    ("deployers",),
                    f"deployers of {name!r} get nothing: dfinfra grants deployers act-as on the runners their "
                    f"environment's workflows (or repository) attach, and {name!r} attaches none",
                )
            )
        releases = {r.name: (j, r) for j, r in enumerate(env.releases)}
        for i, workflow in enumerate(env.workflows):
            j, release = releases[workflow.release]
            if workflow.cron and release.cron:
                why = stagger_warning((release.cron, release.time_zone), (workflow.cron, workflow.time_zone))
                if why:
                    line = deployment.sources[name].line_of(("releases", j, "cron"))
                    where = f" (release {release.name!r}: {release.cron!r} {release.time_zone}, line {line})"
                    message = f"workflow {workflow.name!r} {why}{where}"
                    yield SpecWarning(loc.at(name, ("workflows", i, "cron"), message))
            elif workflow.cron and not release.cron:
                yield SpecWarning(
                    loc.at(
                        name,
                        ("workflows", i, "cron"),
                        f"workflow {workflow.name!r} runs on a schedule but release {release.name!r} has no "
                        "cron: it runs whatever was last made live (by an apply that changed the release, or "
                        f"`dfinfra release {name}`)",
                    )
                )
        if env.alerts is not None and env.alerts.workflows is None and not env.protected:
            yield SpecWarning(
                loc.at(
                    name,
                    ("alerts",),
                    f"no workflow of {name!r} alerts: only a protected environment alerts on every workflow by "
                    "default; list them under `alerts.workflows`",
                )
            )
        for i, runner in enumerate(env.runners):
            for j, grant in enumerate(runner.bigquery.project_wide):
                severity = "owns" if grant.role in ("dataOwner", "admin") else "can touch"
                yield SpecWarning(
                    loc.at(
                        name,
                        ("runners", i, "bigquery", "project_wide", j, "role"),
                        f"runner {runner.name!r} gets roles/bigquery.{grant.role} on the whole project and "
                        f"{severity} every dataset in {env.project.id} (reason given: {grant.reason})",
                    )
                )
            for j, owned in enumerate(runner.bigquery.owns):
                yield SpecWarning(
                    loc.at(
                        name,
                        ("runners", i, "bigquery", "owns", j, "dataset"),
                        f"runner {runner.name!r} gets roles/bigquery.dataOwner on dataset {owned.dataset}: it can "
                        f"change who reads it and delete it (reason given: {owned.reason})",
                    )
                )
