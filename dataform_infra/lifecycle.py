"""bootstrap / plan / apply / destroy for one environment, with the guards a production tool needs.

Each environment's module lives in OUT/<env>/ with dfinfra's bookkeeping in OUT/<env>/.dfinfra/:
`tfplan` (the saved plan), `plan.json` (what it was planned from, bound to the plan file by digest),
`init.json` (the sealed stamp of dfinfra's own `terraform init`: re-init is skipped when nothing init
depends on changed, and a `.terraform/` without it is never run) and `logs/` (one log per run). Terminal matters —
printing and asking — come in as callbacks, so this module never touches the terminal itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from dataform_infra import resource_types as types
from dataform_infra import trust
from dataform_infra.errors import PolicyViolation, Refused, TerraformError, UsageError
from dataform_infra.locks import ModuleLocks
from dataform_infra.render.engine import render_bootstrap
from dataform_infra.render.module import ReleaseConfig, WorkflowConfig
from dataform_infra.render.output import RenderedModule, check_module, recover, write_modules
from dataform_infra.specset import SpecSet
from dataform_infra.terraform.binary import TerraformBinary
from dataform_infra.terraform.runner import LineSink, PlanMode, TerraformRunner
from dataform_infra.terraform.summary import Change, IamNames, PlanSummary

# Environment variables that change what `terraform init` would do with the backend.
BACKEND_ENV = ("GOOGLE_BACKEND_STORAGE_CUSTOM_ENDPOINT", "GOOGLE_STORAGE_CUSTOM_ENDPOINT", "GOOGLE_BACKEND_CREDENTIALS")
_COMPLETE = re.compile(r"^(\S+): (Creation|Modifications|Destruction|Import) complete")

# A grant and the config that needs it in one apply: Google may refuse the config until IAM has propagated.
_PERMISSION_DENIED = re.compile(r"Error 403|PERMISSION_DENIED|Permission '[^']+' denied")
PROPAGATION_ENV = "DFINFRA_IAM_PROPAGATION_WAIT"
APPLY = PlanMode()  # a plain plan of the whole module
_PROVIDERS_OUT_OF_DATE = re.compile(r"Required plugins are not installed|Inconsistent dependency lock file")
_LOCK_BELOW_CONSTRAINT = re.compile(r"does not match\s+configured version constraint|must use terraform init -upgrade")
DEFAULT_PROPAGATION_WAIT = "60"

Confirm = Callable[[str], str | None]  # shows a prompt, returns the answer (None: no terminal)


@dataclass(frozen=True)
class PlanOutcome:
    env: str
    summary: PlanSummary
    plan_file: Path
    mode: PlanMode = APPLY


def apply_order(specs: SpecSet, envs: list[str], *, destroy: bool = False) -> list[str]:
    """`envs` in the directory's apply order (each host first, then the environments whose configs it holds),
    reversed for a destroy."""
    order = [e for e in specs.apply_order() if e in envs]
    return order[::-1] if destroy else order


NO_BUCKET = "The state bucket does not exist yet"
# What a host module's state named its one repository before repositories were named after themselves
# (until the next apply of the host moves it).
LEGACY_REPOSITORY = f"{types.REPOSITORY.name}.this"


def _fingerprint(path: Path) -> str:
    """Size and modification time of what a path (or the link in the plugin cache) holds."""
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


SAVED_PLAN = "saved-plan"  # what plan.json's seal is for
MAX_PLAN_JSON = 64 << 20  # its summary grows with the plan; anything larger is not dfinfra's
# Terraform commands that change the state (or the objects it records): guarded in a protected environment.
STATE_WRITERS = frozenset(
    {
        "import",
        "state mv",
        "state rm",
        "state push",
        "state replace-provider",
        "taint",
        "untaint",
        "force-unlock",
        "refresh",
        "workspace new",
        "workspace select",
        "workspace delete",
    }
)
# Done only through dfinfra's own commands, which show the plan, refuse destructive changes and keep the order.
NOT_PASSED_THROUGH = {
    "apply": "use `dfinfra apply ENV`, which shows the plan, refuses destructive changes without --allow-destroy, "
    "confirms protected environments and keeps the apply order",
    "destroy": "use `dfinfra destroy ENV`, with the same guards",
    "test": "terraform test creates and destroys real resources: run it in a module of its own, not an environment's",
}


def _passthrough_command(args: list[str]) -> str:
    """The terraform command `args` run (`state mv`, `workspace select` for those families); refuses what would
    escape dfinfra's guards: `-chdir` (another module than the environment's), `apply`, `destroy` and `test`."""
    if any(a == "-chdir" or a.startswith(("-chdir=", "--chdir")) for a in args):
        raise UsageError(
            "-chdir is not passed to terraform: dfinfra runs it in the environment's own module (name another "
            "environment instead)"
        )
    words = [a for a in args if not a.startswith("-")]
    if not words or not words[0].strip():
        raise UsageError("name the terraform command after `--`, e.g. dfinfra terraform prod -- state list")
    command = " ".join(words[:2]) if words[0] in ("state", "workspace") else words[0]
    if command in NOT_PASSED_THROUGH:
        raise UsageError(f"`terraform {command}` is not passed through: {NOT_PASSED_THROUGH[command]}")
    return command


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _digest(directory: Path, extra: list[str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.tf")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()


def _refuse_what_google_refuses(env: str, summary: PlanSummary) -> None:
    """A plan that updates an attribute Google fixes at creation would fail half way through its apply:
    refused here, with the replacement that does it (behind --allow-destroy, the object being stateful).
    So is one apply that moves a dataset's grants between its IAM members and its access list, or changes a
    dataset together with its access list: Google's provider documents that the two fight."""
    _refuse_mixed_dataset_grants(env, summary)
    for change in summary.changes:
        known = types.get(change.type)
        fixed = [a.name for a in change.attributes if known and a.name in known.fixed_at_creation]
        if change.action == "update" and fixed:
            raise Refused(
                f"{env}: the plan changes {', '.join(fixed)} of {change.shown} in place, which Google refuses once "
                "it exists (the provider would plan it as an update and the apply would fail half way). To do it, "
                f"recreate it: `dfinfra plan {env} --replace {change.address}`, then `dfinfra apply {env} --replace "
                f"{change.address} --allow-destroy` (a repository's workspaces go with it; its Git remote stays)."
            )


def _refuse_mixed_dataset_grants(env: str, summary: PlanSummary) -> None:
    members, entries = types.BIGQUERY_DATASET_IAM_MEMBER.name, types.BIGQUERY_DATASET_ACCESS.name
    by_dataset: dict[str, list[Change]] = {}
    for change in summary.changes:
        if change.dataset and change.type in (members, entries, types.BIGQUERY_DATASET.name):
            by_dataset.setdefault(change.dataset, []).append(change)
    for dataset, changes in by_dataset.items():
        kinds = {c.type for c in changes if c.type != types.BIGQUERY_DATASET.name}
        updated = [c for c in changes if c.type == types.BIGQUERY_DATASET.name and c.action == "update"]
        if kinds == {members, entries}:
            first = [c.address for c in changes if c.action == "delete"]
            raise Refused(
                f"{env}: the plan moves dataset {dataset}'s grants between its IAM members and its access list in "
                "one apply, and the two fight (removing an IAM member removes the access-list entry for the same "
                "member); nothing applied. Apply in two steps: `dfinfra apply "
                f"{env} {' '.join('--target ' + a for a in first)}`, then `dfinfra apply {env}`."
            )
        if updated and entries in kinds:
            raise Refused(
                f"{env}: the plan changes dataset {dataset} and entries of its access list in one apply, which "
                "Google's provider documents it cannot do (the dataset's update writes back the list it read); "
                f"nothing applied. Apply in two steps: `dfinfra apply {env} --target {updated[0].address}`, then "
                f"`dfinfra apply {env}`."
            )


class Lifecycle:
    def __init__(
        self,
        specs: SpecSet,
        out: Path,
        binary: TerraformBinary,
        *,
        lock_timeout: str = "60s",
        echo: Callable[[str], None] = lambda _: None,
        stream: bool = True,
        impersonate: str | None = None,
        secret_variables: Callable[[str], dict[str, str]] | None = None,
    ):
        self.specs = specs
        # env -> the `TF_VAR_*` of its ephemeral variables (channel tokens), read when a plan or apply needs them.
        self.secret_variables = secret_variables
        self.out = out.absolute()  # terraform runs inside each module directory
        self.binary = binary
        self.lock_timeout = lock_timeout
        self.echo = echo
        self.stream = stream
        self.impersonate = impersonate
        self._applied: set[str] = set()  # environments applied (or destroyed) by this process
        # What an apply that terraform ran to the end, with a failed change, had set out to change.
        self.partly_applied: dict[str, PlanSummary] = {}
        self._locks = ModuleLocks(lock_timeout)  # module directories this process works in
        self._secrets_read: dict[str, dict[str, str]] = {}

    # --- paths and bookkeeping ------------------------------------------------------------

    def module_dir(self, env: str) -> Path:
        return self.out / env

    def _meta_dir(self, directory: Path) -> Path:
        return trust.own_dir(directory / ".dfinfra")

    def _runner(self, directory: Path, operation: str) -> TerraformRunner:
        self._locks.hold(directory, operation, waiting=self.echo)
        runner = TerraformRunner(
            self.binary,
            directory,
            self._meta_dir(directory) / "logs",
            self.lock_timeout,
            self.impersonate,
            module_lock=self._locks.descriptor(directory),
        )
        runner.open_log(operation)
        return runner

    def _secret_env(self, env: str) -> dict[str, str]:
        """`env`'s ephemeral variables (channel tokens), read once per process."""
        if self.secret_variables is None:
            return {}
        if env not in self._secrets_read:
            self._secrets_read[env] = self.secret_variables(env)
        return self._secrets_read[env]

    def _secret_versions(self, env: str) -> dict[str, str]:
        """Which secret version each ephemeral variable came from: a saved plan holds the versions it was made with
        (in its `_version` variables), so a token set since then makes it stale."""
        return {k: v for k, v in sorted(self._secret_env(env).items()) if k.endswith("_version")}

    def _render(self, env: str, render: bool) -> Path:
        directory = self.module_dir(env)
        # Callers asked for the lock first; a module rendered here for the first time is locked now.
        self._locks.hold(directory, "render", waiting=self.echo)
        if render:  # rolls back a killed render first
            self.specs.write(self.out, [env], lock_timeout=self.lock_timeout, waiting=self.echo)
        else:  # never plan a half-swapped module (it would revoke grants)
            for restored in recover(self.out, lock_timeout=self.lock_timeout, waiting=self.echo):
                self.echo(f"{restored}: rolled back a render that was interrupted half way")
            if not any(directory.glob("*.tf")):
                raise UsageError(f"{directory} holds no rendered module; run without --no-render")
            check_module(directory)  # only what dfinfra rendered, as a render would insist
        return directory

    def _init_inputs(self, directory: Path) -> list[str]:
        """Everything `terraform init` depends on: a change to any of them means init again.

        The module's files, the binary, the backend settings, and also the dependency lock file, the
        CLI configuration and the installed providers, which a teammate's `init -upgrade`, another
        platform or a cleaned plugin cache change without touching the module.
        """
        config = os.environ.get("TF_CLI_CONFIG_FILE") or str(Path.home() / ".terraformrc")
        providers = directory / ".terraform" / "providers"
        installed = sorted(
            f"{p.relative_to(providers)}:{_fingerprint(p)}"
            for p in (providers.rglob("*") if providers.is_dir() else [])
            if p.is_file() or p.is_symlink()
        )
        return [
            self.binary.path,
            self.binary.version_text,
            *(f"{k}={os.environ.get(k, '')}" for k in (*BACKEND_ENV, "TF_PLUGIN_CACHE_DIR")),
            _read(directory / ".terraform.lock.hcl"),
            _read(Path(config)),
            *installed,
        ]

    def _ensure_init(self, runner: TerraformRunner, directory: Path, *, force: bool = False) -> None:
        self._meta_dir(directory)  # a real directory, never a link
        wanted = _digest(directory, self._init_inputs(directory))
        made = trust.init_stamp(directory)  # refuses a .terraform/ dfinfra's own init did not leave as it is
        if not force and made == wanted:
            return
        self.echo(f"terraform init ({directory})")
        inputs = ""  # a failed init is ours too, and is run again next time
        try:
            try:
                runner.init(on_line=self._verbose_sink())
            except TerraformError as exc:
                if not _LOCK_BELOW_CONSTRAINT.search(str(exc)):
                    raise
                # The render asks for another provider line (provider_version, or dfinfra's default moving
                # to the current major) than the lock file holds: the lock follows the spec, and the plan
                # that comes next shows what the new provider changes.
                self.echo(
                    f"{directory.name}: the lock file holds a provider the module no longer admits; "
                    "terraform init -upgrade"
                )
                runner.init(on_line=self._verbose_sink(), upgrade=True)
            inputs = _digest(directory, self._init_inputs(directory))  # as init left them
        except TerraformError as exc:
            if "bucket doesn't exist" in str(exc) or "bucket does not exist" in str(exc):
                env = directory.name
                raise TerraformError(f"{exc}\n{NO_BUCKET}: run `dfinfra bootstrap {env}` first.") from None
            raise
        finally:
            if (directory / ".terraform").is_dir():
                trust.seal_init(directory, inputs)

    def _verbose_sink(self) -> LineSink | None:
        return (lambda stream, line: self.echo(line)) if self.stream else None

    # --- plan -----------------------------------------------------------------------------

    def plan(self, env: str, *, render: bool = True, mode: PlanMode = APPLY) -> PlanOutcome:
        self._locks.hold(self.module_dir(env), "plan", waiting=self.echo)
        directory = self._render(env, render)
        runner = self._runner(directory, "plan-destroy" if mode.destroy else "plan")
        self._ensure_init(runner, directory)
        meta = self._meta_dir(directory)
        plan_file = meta / "tfplan"
        meta_file = meta / "plan.json"
        meta_file.unlink(missing_ok=True)
        plan_file.unlink(missing_ok=True)  # terraform writes a new one (never through what was there)
        # A channel's token goes to this plan only (never init or show); a destroy or refresh-only plan changes no
        # channel, so it neither reads nor needs it.
        secrets = self._secret_env(env) if mode.creates_or_updates else {}
        try:
            with runner.carrying(secrets):
                result = runner.plan(plan_file, mode, on_line=self._verbose_sink())  # -v: terraform's own plan
        except TerraformError as exc:
            if not _PROVIDERS_OUT_OF_DATE.search(str(exc)):
                raise
            self.echo(f"{env}: the installed providers do not match the lock file; running terraform init again")
            self._ensure_init(runner, directory, force=True)
            with runner.carrying(secrets):
                result = runner.plan(plan_file, mode, on_line=self._verbose_sink())
        if result.returncode == 0:  # -detailed-exitcode: nothing to change, import or record; nothing to show
            summary = PlanSummary(refresh_only=mode.refresh_only)
        else:
            summary = self._summarise(env, runner, plan_file, mode)
            _refuse_what_google_refuses(env, summary)
        record: dict[str, object] = {
            "env": env,
            "render_sha256": _digest(directory, []),
            "tfplan_sha256": _file_digest(plan_file),
            "mode": mode.to_dict(),
            "secret_versions": self._secret_versions(env) if mode.creates_or_updates else {},
            "planned_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "summary": summary.to_dict(),
        }
        seal = trust.seal(SAVED_PLAN, json.dumps(record, sort_keys=True))  # made here: trusted without a flag
        trust.write_file(meta_file, json.dumps({**record, "seal": seal}, indent=2))
        return PlanOutcome(env, summary, plan_file, mode=mode)

    def check_policy(self, *, allow_violations: bool) -> list[str]:
        """`validate`'s findings, before anything is planned or applied: a spec that breaks a least-privilege
        rule, or whose runs would fail, is refused (PolicyViolation, exit 1) unless the caller allows it.
        Returns the violations allowed (for the PR comment to state them)."""
        violations = [f.describe() for f in self.specs.validate().violations]
        if violations and not allow_violations:
            listed = "\n".join(f"  violation: {v}" for v in violations)
            raise PolicyViolation(
                f"{len(violations)} least-privilege violation(s) in {self.specs.environments_dir} (what "
                f"`dfinfra validate` reports); nothing planned or applied:\n{listed}\nFix the spec, or pass "
                "--allow-violations to go ahead anyway (the plan's summary says so)."
            )
        return violations

    def check_saved_plans(self, envs: list[str], mode: PlanMode = APPLY) -> None:
        """Refuse before anything is applied unless every environment has its reviewed plan."""
        missing = [env for env in envs if self._saved_plan_file(env, mode, from_elsewhere=True) is None]
        if missing:
            raise Refused(
                f"no saved plan made from the files now in {', '.join(str(self.module_dir(e)) for e in missing)} "
                "(the render changed since it was reviewed, a notification channel's token was set since, or it was "
                "never planned); nothing applied. Plan again and review it."
            )

    def _summarise(self, env: str, runner: TerraformRunner, plan_file: Path, mode: PlanMode) -> PlanSummary:
        """The saved plan, read once through `terraform show -json`, every change named as `explain` names it; in a
        destroy, what dfinfra adopted (`existing: true`) is to be forgotten, not deleted (`_forget`)."""
        module = self.specs.module(env)
        summary = runner.show_plan(plan_file, mode.refresh_only, self._iam_names(env), module.names())
        return summary.forgetting({str(i.to) for i in module.imports}) if mode.destroy else summary

    def _iam_names(self, env: str) -> IamNames:
        """Every grant the module renders, named as `explain` names it."""
        return {g.address: (g.principal.label, g.role, g.resource.label) for g in self.specs.module(env).grants}

    def _saved_plan_file(self, env: str, mode: PlanMode, *, from_elsewhere: bool = False) -> Path | None:
        """The saved plan file, if its bookkeeping says it was made for this environment from exactly the files
        now rendered, for the same mode, and the plan file carries exactly those files as its configuration
        (what `terraform apply PLAN` applies). Bookkeeping this machine's dfinfra did not seal (a CI plan job's
        artefact) is accepted only `from_elsewhere` (--require-saved-plan); no terraform run: cheap enough to
        check every environment first."""
        directory = self.module_dir(env)
        meta_file = self._meta_dir(directory) / "plan.json"
        plan_file = self._meta_dir(directory) / "tfplan"
        raw = trust.read_file(meta_file, MAX_PLAN_JSON)
        if raw is None or plan_file.is_symlink() or not plan_file.is_file():
            return None
        try:
            meta = json.loads(raw)
        except ValueError:  # damaged bookkeeping: plan again rather than trust it
            return None
        if not isinstance(meta, dict):
            return None
        seal = meta.pop("seal", None)
        if not from_elsewhere and not trust.sealed(SAVED_PLAN, json.dumps(meta, sort_keys=True), seal):
            return None
        if meta.get("render_sha256") != _digest(directory, []) or meta.get("mode") != mode.to_dict():
            return None
        if mode.creates_or_updates and meta.get("secret_versions", {}) != self._secret_versions(env):
            return None  # a channel's token was set since it was planned
        # The plan file itself, written with this bookkeeping for this environment: not one planned later, nor
        # another environment's copied in, nor one made from another configuration than the render.
        if meta.get("env") != env or meta.get("tfplan_sha256") != _file_digest(plan_file):
            return None
        return plan_file if trust.plan_config_matches(plan_file, directory) else None

    def saved_plan(self, env: str, *, mode: PlanMode = APPLY, from_elsewhere: bool = False) -> PlanOutcome | None:
        """The saved plan, if it was made from exactly the files now rendered, for the same mode."""
        plan_file = self._saved_plan_file(env, mode, from_elsewhere=from_elsewhere)
        if plan_file is None:
            return None
        directory = self.module_dir(env)
        runner = self._runner(directory, "show")
        self._ensure_init(runner, directory)  # a fresh checkout with a downloaded plan has no .terraform yet
        summary = self._summarise(env, runner, plan_file, mode)
        return PlanOutcome(env, summary, plan_file, mode=mode)

    # --- apply / destroy ------------------------------------------------------------------

    def apply(
        self,
        env: str,
        *,
        render: bool = True,
        mode: PlanMode = APPLY,
        require_saved_plan: bool = False,
        auto_approve: bool = False,
        allow_destroy: bool = False,
        confirm: Confirm = lambda _: None,
        confirmed: Collection[str] = (),
    ) -> PlanSummary:
        self._locks.hold(self.module_dir(env), "destroy" if mode.destroy else "apply", waiting=self.echo)
        if render:
            self._render(env, True)
        self._check_order(env, mode, render=render)
        if require_saved_plan:
            self.check_saved_plans([env], mode)
        outcome = self.saved_plan(env, mode=mode, from_elsewhere=require_saved_plan)
        if outcome is None:
            if (self._meta_dir(self.module_dir(env)) / "tfplan").exists():
                self.echo(f"{env}: the saved plan was made from another render or mode; planning again")
            outcome = self.plan(env, render=False, mode=mode)
        else:
            self.echo(f"{env}: applying the saved plan ({outcome.plan_file})")
        summary = outcome.summary
        self.echo(summary.describe())
        if not summary.has_changes:
            self._discard_plan(env)
            self._applied.add(env)  # up to date: what follows it in the order may go on
            return summary
        verb = "destroy" if mode.destroy else "apply"

        def guard(planned: PlanSummary) -> None:
            self._guard(
                env,
                planned,
                auto_approve=auto_approve,
                allow_destroy=allow_destroy,
                confirm=confirm,
                confirmed=confirmed,
                verb=verb,
            )

        guard(summary)
        if summary.forgotten():
            outcome = self._forget(env, outcome)
            if not outcome.summary.has_changes:
                self._discard_plan(env)
                self._applied.add(env)
                return summary

        def guard_again(replanned: PlanSummary) -> None:
            """The plan made after an IAM-propagation wait gets every guard the reviewed one got; under
            --require-saved-plan it may hold nothing the reviewed plan did not."""
            unreviewed = replanned.beyond(summary)
            if require_saved_plan and unreviewed:
                listed = ", ".join(f"{c.action} {c.address}" for c in unreviewed)
                raise Refused(
                    f"{env}: the plan made after waiting for IAM to propagate would also {listed}, which the "
                    "reviewed plan did not; nothing more applied (--require-saved-plan). Plan again and review it."
                )
            guard(replanned)

        self._apply_plan(env, outcome, guard_retry=guard_again)
        self._applied.add(env)
        return summary

    def _forget(self, env: str, reviewed: PlanOutcome) -> PlanOutcome:
        """After the destroy plan was reviewed: remove its adopted objects from the state (Google Cloud keeps
        them), then plan again; that plan may only be the reviewed one without them."""
        forgotten = reviewed.summary.forgotten()
        self.echo(f"{env}: forgetting {', '.join(forgotten)} (adopted: they stay in Google Cloud)")
        runner = self._runner(self.module_dir(env), "forget")
        runner.state_rm(forgotten)
        again = self.plan(env, render=False, mode=reviewed.mode)
        if again.summary.forgotten():
            # Terraform before 1.8.5 imports, during a destroy's refresh, what an `import` block names and the
            # state lacks: the objects would be deleted after all.
            raise Refused(
                f"{env}: after forgetting {', '.join(again.summary.forgotten())}, {self.binary.describe()} imports "
                "them again for the destroy (fixed in terraform 1.8.5) and would delete them; nothing destroyed. Use "
                "terraform "
                ">= 1.8.5 (--terraform-bin), or remove `existing: true` from the spec before destroying if they "
                "should go."
            )
        unreviewed = again.summary.beyond(reviewed.summary)
        if unreviewed:
            listed = ", ".join(f"{c.action} {c.address}" for c in unreviewed)
            raise Refused(
                f"{env}: after forgetting the adopted objects, the destroy plan would also {listed}, which the "
                f"reviewed plan did not; nothing destroyed. Plan the destroy again and review it (the next apply "
                "imports the forgotten objects back)."
            )
        return again

    def releases_to_make_live(self, env: str, applied: PlanSummary) -> list[str]:
        """The releases an apply of `env` created or changed: each starts with no live compilation (the
        provider's full update empties it), so its workflows have nothing to run until it is compiled again.
        After an apply that failed part way (`partly_applied`), the ones it planned to: which completed is not
        known, and one that did not change is compiled again from its Git ref as it stands now (for a branch, the
        current head), as its next cron would."""
        touched = {
            c.address
            for c in applied.changes
            if c.type == types.RELEASE_CONFIG.name and c.action in ("create", "update", "replace")
        }
        return [view.config_id for view in self.specs.module(env).releases if view.address in touched]

    def _check_order(self, env: str, mode: PlanMode, *, render: bool) -> None:
        """Stop before terraform when the order is wrong: a target's configs live in the host's
        repository (applied first), and destroying the host takes the targets' configs with it."""
        top = self.specs.topology_of(env)
        host = top.host_name
        if mode.destroy and env == host:
            others = [t for t in top.apply_order() if t != host and t not in self._applied]
            alive = [t for t in others if self._state(t, render=render)]
            if alive:
                raise Refused(
                    f"refusing to destroy {host}: its repository holds the configs of {', '.join(alive)}, whose "
                    f"state still lists resources. Destroy {' and '.join(alive)} first (or `dfinfra destroy --all`, "
                    "which destroys the targets before the host); nothing destroyed."
                )
        elif not mode.destroy and env != host and host not in self._applied:
            waiting = self._waiting_for_host(env, render=render)
            if waiting:
                raise Refused(
                    f"{waiting}: apply {host} first (`dfinfra apply {host}`, or `dfinfra apply --all`, which applies "
                    "the host first); nothing applied."
                )

    def _waiting_for_host(self, env: str, *, render: bool) -> str | None:
        """Why `env` cannot be applied before the host, or None: its configs live in host repositories the
        host's state does not hold yet (without configs, its grants name the service agent the host's first
        apply creates)."""
        module = self.specs.module(env)
        host = self.specs.topology_of(env).host_name
        held = set(self._state(host, render=render))
        configs: list[ReleaseConfig | WorkflowConfig] = [*module.releases, *module.workflows]
        if not configs:
            if any(a.startswith(f"{types.REPOSITORY.name}.") for a in held):
                return None
            agent = f"the Dataform service agent that {host} creates"
            return f"{env}'s grants name {agent}, and {host}'s state holds no repository yet"
        homes = {c.home.name for c in configs}
        wanted = {
            view.address: view.hosted.name for view in self.specs.module(host).repositories if view.hosted.name in homes
        }
        if LEGACY_REPOSITORY in held and self.specs.topology_of(env).single_repository:
            return None  # applied before repositories were named after themselves: the same repository
        missing = [f"repository {name}" for address, name in wanted.items() if address not in held]
        if not missing:
            return None
        return (
            f"{env}'s release and workflow configs live in {', '.join(missing)}, which {host} creates, and {host}'s "
            "state holds no such repository yet"
        )

    def _state(self, env: str, *, render: bool) -> list[str]:
        """Addresses in `env`'s state (empty when it has none, or no module is rendered to ask with)."""
        if render:
            self.specs.write(self.out, [env], lock_timeout=self.lock_timeout, waiting=self.echo)
        elif not any(self.module_dir(env).glob("*.tf")):
            return []
        try:
            return self.initialised_runner(env, "state").state_list()
        except TerraformError as error:
            if NO_BUCKET in str(error):  # never bootstrapped, so never applied
                return []
            raise

    def initialised_runner(self, env: str, operation: str) -> TerraformRunner:
        """A runner for `env`'s rendered module, after `terraform init` if one is due."""
        directory = self.module_dir(env)
        runner = self._runner(directory, operation)
        self._ensure_init(runner, directory)
        return runner

    def scratch_runner(self, directory: Path) -> TerraformRunner:
        """A runner in a directory holding no module (for `terraform state` on local files)."""
        return TerraformRunner(
            self.binary, directory, self.out / ".dfinfra" / "logs", self.lock_timeout, self.impersonate
        )

    def _guard(
        self,
        env: str,
        summary: PlanSummary,
        *,
        auto_approve: bool,
        allow_destroy: bool,
        confirm: Confirm,
        confirmed: Collection[str],
        verb: str,
    ) -> None:
        _refuse_what_google_refuses(env, summary)  # a saved plan made elsewhere too
        if summary.destructive and not allow_destroy:
            listed = ", ".join(f"{c.action} {c.address}" for c in summary.destructive)
            raise Refused(
                f"refusing to {verb} {env}: the plan would {listed}. These hold data or identities other "
                "systems use; re-run with --allow-destroy if that is intended."
            )
        protected = self.specs.deployment.environments[env].protected
        if auto_approve:
            if protected and env not in confirmed:
                raise Refused(f"{env} is protected: with --auto-approve also pass --confirm {env}")
            return
        question = (
            f"{env} is protected. Type the environment name to {verb} it: "
            if protected
            else f"{verb.capitalize()} these changes to {env}? Only 'yes' is accepted: "
        )
        answer = confirm(question)
        if answer is None:
            raise Refused(
                f"refusing to {verb} {env} without confirmation: no terminal to ask on. "
                "Pass --auto-approve" + (f" --confirm {env}" if protected else "") + " in automation."
            )
        if answer.strip() != (env if protected else "yes"):
            raise Refused(f"{verb} of {env} cancelled")

    def _apply_plan(
        self, env: str, outcome: PlanOutcome, *, guard_retry: Callable[[PlanSummary], None] | None = None
    ) -> None:
        """Apply the saved plan. After a permission error right after new grants (IAM propagates in
        minutes), plan again once and apply that plan, shown and passed through `guard_retry` first."""
        directory = self.module_dir(env)
        runner = self._runner(directory, "apply")
        total, done = outcome.summary.steps, 0

        def progress(stream: str, line: str) -> None:
            nonlocal done
            if _COMPLETE.match(line):
                done += 1
                line = f"[{done}/{total}] {line}"
            if line.strip():
                self.echo(line)  # apply output always streams live

        secrets = self._secret_env(env) if outcome.mode.creates_or_updates else {}
        with runner.carrying(secrets):  # ephemeral variables are given again at apply
            result = runner.apply(outcome.plan_file, on_line=progress)
        self._discard_plan(env)
        if result.interrupted == 1:
            raise TerraformError(
                f"{env}: apply interrupted after {done}/{total} changes; terraform stopped gracefully and saved "
                f"the state of what completed. Run `dfinfra plan {env}` to see what is left. (log: {runner.log_path})"
            )
        if result.interrupted:
            raise TerraformError(
                f"{env}: apply stopped immediately after {done}/{total} completed changes; a change in flight may "
                f"exist in Google Cloud but not in the state, and the state lock may still be held. Run "
                f"`dfinfra plan {env}` (it names the lock holder if one is left) and import what it would create "
                f"twice. (log: {runner.log_path})"
            )
        if "Saved plan is stale" in result.output:
            raise TerraformError(
                f"{env}: the state changed since the plan was made (another run?); plan again with `dfinfra plan {env}`"
            )
        if result.returncode != 0:
            # Terraform ran to the end and some change failed: what it set out to change may be half done, release
            # configs among it (an interrupt, a stale plan or a lock never gets here). The first failed plan is
            # kept: a retry after IAM propagation plans only what is left.
            self.partly_applied.setdefault(env, outcome.summary)
        if guard_retry and result.returncode != 0 and _PERMISSION_DENIED.search(result.output):
            grants = [c for c in outcome.summary.changes if c.type.endswith("_iam_member") and c.action == "create"]
            if grants:
                wait = float(os.environ.get(PROPAGATION_ENV, DEFAULT_PROPAGATION_WAIT))
                self.echo(
                    f"{env}: permission denied right after this apply created {len(grants)} IAM grant(s); IAM changes "
                    f"take time to propagate, so waiting {wait:g}s and applying once more (log: {runner.log_path})"
                )
                time.sleep(wait)
                again = self.plan(env, render=False, mode=outcome.mode)
                self.echo(f"{env}: the plan after waiting, for what is left to apply:")
                self.echo(again.summary.describe())
                if again.summary.has_changes:
                    guard_retry(again.summary)
                    self._apply_plan(env, again)
                else:
                    self._discard_plan(env)
                return
        runner.check(result, "apply", shown=True)  # apply output streams live: its errors are on screen
        verb = "destroyed" if outcome.mode.destroy else "applied"
        self.echo(f"{env}: {verb} ({done}/{total}). Log: {runner.log_path}")

    def _discard_plan(self, env: str) -> None:
        meta = self._meta_dir(self.module_dir(env))
        for name in ("tfplan", "plan.json"):
            (meta / name).unlink(missing_ok=True)

    # --- anything else terraform does -----------------------------------------------------------

    def terraform(
        self,
        env: str,
        args: list[str],
        *,
        render: bool = True,
        confirm: Confirm = lambda _: None,
        confirmed: Collection[str] = (),
    ) -> int:
        """Run terraform with `args` in the environment's module, with dfinfra's binary, plugin cache and
        backend settings, after an init if one is due: `state list`, `import`, `output`, `force-unlock`...

        Terraform talks to the terminal directly (prompts included); returns its exit code. What would
        bypass dfinfra's guards is refused or guarded here: `apply` and `destroy` (dfinfra's own commands
        show the plan and refuse destructive changes), `-chdir` (another directory than the environment's),
        and in a protected environment every command that writes the state needs its name confirmed.
        """
        command = _passthrough_command(args)
        protected = self.specs.deployment.environments[env].protected
        if protected and command in STATE_WRITERS and env not in confirmed:
            answer = confirm(f"{env} is protected. Type the environment name to run `terraform {command}` in it: ")
            if answer is None:
                raise Refused(
                    f"refusing `terraform {command}` in protected {env} without confirmation: no terminal to ask "
                    f"on. Pass --confirm {env}."
                )
            if answer.strip() != env:
                raise Refused(f"terraform {command} in {env} cancelled")
        self._locks.hold(self.module_dir(env), f"terraform {command}", waiting=self.echo)
        directory = self._render(env, render)
        runner = self._runner(directory, "terraform")
        self._ensure_init(runner, directory)
        code = runner.interactive(args, self.echo)
        if (directory / ".terraform").is_dir():  # `init -upgrade`, `workspace select`: still dfinfra's doing;
            trust.seal_init(directory, "")  # sealed as it is now, and initialised afresh next time
        return code

    # --- bootstrap ------------------------------------------------------------------------

    def bootstrap_dir(self, env: str) -> Path:
        return self.out / ".bootstrap" / env

    def bootstrap(
        self,
        env: str,
        *,
        auto_approve: bool = False,
        confirm: Confirm = lambda _: None,
        confirmed: Collection[str] = (),
    ) -> PlanSummary:
        """Create the environment's state bucket with a small module on local state; adopt it if it exists.

        Environments may share one bucket (different prefixes): the first environment naming it owns
        its bootstrap module, so two modules never fight over one bucket in different projects.
        """
        environments = self.specs.deployment.environments
        spec = environments[env]
        owner = next(name for name, other in environments.items() if other.state.bucket == spec.state.bucket)
        if owner != env:
            self.echo(f"{env}: state bucket gs://{spec.state.bucket} is shared with {owner}; bootstrapping it there")
            return self.bootstrap(owner, auto_approve=auto_approve, confirm=confirm, confirmed=confirmed)
        directory = self.bootstrap_dir(env)
        module = RenderedModule(env, render_bootstrap(self.specs.deployment, env))
        write_modules(directory.parent, [module], lock_timeout=self.lock_timeout, waiting=self.echo)
        runner = self._runner(directory, "bootstrap")
        self._ensure_init(runner, directory)
        bucket = f"{types.STORAGE_BUCKET.name}.state"  # the bootstrap template's one resource
        if bucket not in runner.state_list():
            adopted = runner.import_resource(
                bucket, types.STORAGE_BUCKET.import_id_of(project=spec.project.id, name=spec.state.bucket)
            )
            if adopted.returncode == 0:
                self.echo(f"{env}: bucket gs://{spec.state.bucket} already exists; adopted it")
            elif "non-existent remote object" not in adopted.output and "Cannot import" not in adopted.output:
                runner.check(adopted, "import")
        plan_file = self._meta_dir(directory) / "tfplan"
        runner.plan(plan_file)
        summary = runner.show_plan(plan_file)
        self.echo(summary.describe())
        if summary.has_changes:
            self._guard(
                env,
                summary,
                auto_approve=auto_approve,
                allow_destroy=False,
                confirm=confirm,
                confirmed=confirmed,
                verb="bootstrap",
            )
            runner.check(
                runner.apply(plan_file, on_line=lambda s, line: self.echo(line) if line.strip() else None), "apply"
            )
        plan_file.unlink(missing_ok=True)
        self.echo(
            f"{env}: state bucket gs://{spec.state.bucket} ready (versioned, uniform access, "
            "public access prevention enforced)"
        )
        return summary
