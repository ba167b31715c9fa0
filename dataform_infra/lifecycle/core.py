"""plan / apply / destroy and the terraform pass-through for the selected environments, in their order.

Each environment's module lives in OUT/<env>/ with dfinfra's bookkeeping in OUT/<env>/.dfinfra/ (`bookkeeping`:
the saved plan and what it was planned from, the init stamp) and `logs/` (one log per run). The guards between a
plan and Google Cloud are `guards`, the apply order `order`, the state bucket `bootstrap`. A command takes each
module's lock once, on entry, and every terraform run of the command works under it. Terminal matters — printing,
progress and asking — come in as callbacks, so this package never touches the terminal itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from dataform_infra import resource_types as types
from dataform_infra import trust
from dataform_infra.errors import DfinfraError, PolicyViolation, Refused, TerraformError, UsageError
from dataform_infra.lifecycle import bookkeeping, guards
from dataform_infra.lifecycle.guards import ASK_NOBODY, Approval
from dataform_infra.lifecycle.order import NO_BUCKET, apply_order, check_order
from dataform_infra.locks import ModuleLocks
from dataform_infra.render.output import check_module, recover
from dataform_infra.specset import SpecSet
from dataform_infra.terraform.binary import TerraformBinary
from dataform_infra.terraform.runner import LineSink, PlanMode, TerraformRunner
from dataform_infra.terraform.summary import IamNames, PlanSummary

_COMPLETE = re.compile(r"^(\S+): (Creation|Modifications|Destruction|Import) complete")

# A grant and the config that needs it in one apply: Google may refuse the config until IAM has propagated.
_PERMISSION_DENIED = re.compile(r"Error 403|PERMISSION_DENIED|Permission '[^']+' denied")
PROPAGATION_ENV = "DFINFRA_IAM_PROPAGATION_WAIT"
APPLY = PlanMode()  # a plain plan of the whole module
_PROVIDERS_OUT_OF_DATE = re.compile(r"Required plugins are not installed|Inconsistent dependency lock file")
_LOCK_BELOW_CONSTRAINT = re.compile(r"does not match\s+configured version constraint|must use terraform init -upgrade")
DEFAULT_PROPAGATION_WAIT = "60"
Progress = Callable[[str], AbstractContextManager[object]]  # shown around a long step ("planning prod")


@dataclass(frozen=True)
class PlanOutcome:
    env: str
    summary: PlanSummary
    plan_file: Path
    mode: PlanMode = APPLY


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

    def _enter(self, directory: Path, operation: str) -> None:
        """Take `directory`'s lock for what this command came to do (`apply`, not its inner `plan`), once: every
        later step of the command works under it. A module not rendered yet is locked by the render that makes
        it (`_render`)."""
        self._locks.hold(directory, operation, waiting=self.echo)

    def _runner(self, directory: Path, operation: str) -> TerraformRunner:
        """A runner in `directory`, which this command holds: terraform inherits the lock's descriptor."""
        lock = self._locks.descriptor(directory)
        if lock is None:
            raise RuntimeError(f"terraform would run in {directory} without its module lock")  # a bug of ours
        runner = TerraformRunner(
            self.binary,
            directory,
            bookkeeping.meta_dir(directory) / "logs",
            self.lock_timeout,
            self.impersonate,
            module_lock=lock,
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
        if render:  # rolls back a killed render first
            self.specs.write(self.out, [env], lock_timeout=self.lock_timeout, waiting=self.echo)
            self._enter(directory, "render")  # rendered here for the first time: locked now, under the entry's name
        else:  # never plan a half-swapped module (it would revoke grants)
            for restored in recover(self.out, lock_timeout=self.lock_timeout, waiting=self.echo):
                self.echo(f"{restored}: rolled back a render that was interrupted half way")
            if not any(directory.glob("*.tf")):
                raise UsageError(f"{directory} holds no rendered module; run without --no-render")
            check_module(directory)  # only what dfinfra rendered, as a render would insist
        return directory

    def _ensure_init(self, runner: TerraformRunner, directory: Path, *, force: bool = False) -> None:
        bookkeeping.meta_dir(directory)  # a real directory, never a link
        wanted = bookkeeping.init_digest(directory, self.binary)
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
            inputs = bookkeeping.init_digest(directory, self.binary)  # as init left them
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

    def selected(self, envs: list[str], all_: bool, *, destroy: bool = False) -> list[str]:
        """The environments named (or all of them), in the order they are applied (reversed for a destroy);
        an unknown name is bad input."""
        return apply_order(self.specs, self.specs.select(envs, all_), destroy=destroy)

    def plan_each(
        self,
        envs: list[str],
        *,
        render: bool = True,
        mode: PlanMode = APPLY,
        progress: Progress = lambda _: contextlib.nullcontext(),
        planned: Callable[[str, PlanSummary], None] = lambda env, summary: None,
    ) -> dict[str, PlanSummary]:
        """Plan each of `envs` in turn (`planned` is told as each is done); their summaries."""
        results = {}
        for env in envs:
            with progress(f"planning {env}"):
                results[env] = self.plan(env, render=render, mode=mode).summary
            planned(env, results[env])
        return results

    def plan(self, env: str, *, render: bool = True, mode: PlanMode = APPLY) -> PlanOutcome:
        directory = self.module_dir(env)
        self._enter(directory, "plan")
        self._render(env, render)
        runner = self._runner(directory, "plan-destroy" if mode.destroy else "plan")
        self._ensure_init(runner, directory)
        bookkeeping.discard_plan(directory)  # terraform writes a new one (never through what was there)
        plan_file = bookkeeping.plan_file(directory)
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
            guards.refuse_what_google_refuses(env, summary)
        versions = self._secret_versions(env) if mode.creates_or_updates else {}
        bookkeeping.record_plan(directory, env, mode, versions, summary)
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
        versions = self._secret_versions(env) if mode.creates_or_updates else {}
        return bookkeeping.saved_plan_file(self.module_dir(env), env, mode, versions, from_elsewhere=from_elsewhere)

    def saved_plan(self, env: str, *, mode: PlanMode = APPLY, from_elsewhere: bool = False) -> PlanOutcome | None:
        """The saved plan, if it was made from exactly the files now rendered, for the same mode."""
        plan_file = self._saved_plan_file(env, mode, from_elsewhere=from_elsewhere)
        if plan_file is None:
            return None
        directory = self.module_dir(env)
        self._enter(directory, "show")
        runner = self._runner(directory, "show")
        self._ensure_init(runner, directory)  # a fresh checkout with a downloaded plan has no .terraform yet
        summary = self._summarise(env, runner, plan_file, mode)
        return PlanOutcome(env, summary, plan_file, mode=mode)

    # --- apply / destroy ------------------------------------------------------------------

    def apply_each(
        self,
        envs: list[str],
        *,
        render: bool = True,
        mode: PlanMode = APPLY,
        require_saved_plan: bool = False,
        approval: Approval = ASK_NOBODY,
        changed_releases: Callable[[str, list[str]], None] = lambda env, releases: None,
    ) -> None:
        """Apply (or destroy) each of `envs` in turn, in the order given (`selected`). Under
        --require-saved-plan every environment's reviewed plan is checked before any is applied.

        An apply that creates or changes a release config empties its live compilation (the provider's update
        is a full one), so its workflows have nothing to run until it is compiled again: `changed_releases` is
        given them after each apply, and after one that failed part way (never after an interrupt), before the
        failure is raised."""
        if require_saved_plan:
            self.check_saved_plans(envs, mode)  # all of them before applying any
        changes_releases = not (mode.destroy or mode.refresh_only)
        for env in envs:
            self.echo(f"== {env}")
            try:
                applied = self.apply(
                    env, render=render, mode=mode, require_saved_plan=require_saved_plan, approval=approval
                )
            except DfinfraError:
                partly = self.partly_applied.get(env)
                if partly is not None and changes_releases:
                    changed_releases(env, self.releases_to_make_live(env, partly))
                raise
            if changes_releases:
                changed_releases(env, self.releases_to_make_live(env, applied))

    def apply(
        self,
        env: str,
        *,
        render: bool = True,
        mode: PlanMode = APPLY,
        require_saved_plan: bool = False,
        approval: Approval = ASK_NOBODY,
    ) -> PlanSummary:
        directory = self.module_dir(env)
        self._enter(directory, "destroy" if mode.destroy else "apply")
        if render:
            self._render(env, True)
        check_order(self.specs, env, mode, done=self._applied, state_of=lambda other: self._state(other, render=render))
        if require_saved_plan:
            self.check_saved_plans([env], mode)
        outcome = self.saved_plan(env, mode=mode, from_elsewhere=require_saved_plan)
        if outcome is None:
            if bookkeeping.plan_file(directory).exists():
                self.echo(f"{env}: the saved plan was made from another render or mode; planning again")
            outcome = self.plan(env, render=False, mode=mode)
        else:
            self.echo(f"{env}: applying the saved plan ({outcome.plan_file})")
        summary = outcome.summary
        self.echo(summary.describe())
        if not summary.has_changes:
            bookkeeping.discard_plan(directory)
            self._applied.add(env)  # up to date: what follows it in the order may go on
            return summary
        verb = "destroy" if mode.destroy else "apply"

        def guard(planned: PlanSummary) -> None:
            guards.confirm_changes(
                env,
                planned,
                protected=self.specs.deployment.environments[env].protected,
                approval=approval,
                verb=verb,
            )

        guard(summary)
        if summary.forgotten():
            outcome = self._forget(env, outcome)
            if not outcome.summary.has_changes:
                bookkeeping.discard_plan(directory)
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

    def _state(self, env: str, *, render: bool) -> list[str]:
        """Addresses in `env`'s state (empty when it has none, or no module is rendered to ask with)."""
        if render:
            self._enter(self.module_dir(env), "state")
            self._render(env, True)
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
        return self.runner_in(self.module_dir(env), operation)

    def runner_in(self, directory: Path, operation: str) -> TerraformRunner:
        """A runner in the module in `directory`, locked for `operation`, after `terraform init` if one is due."""
        self._enter(directory, operation)
        runner = self._runner(directory, operation)
        self._ensure_init(runner, directory)
        return runner

    def scratch_runner(self, directory: Path) -> TerraformRunner:
        """A runner in a directory holding no module (for `terraform state` on local files)."""
        return TerraformRunner(
            self.binary, directory, self.out / ".dfinfra" / "logs", self.lock_timeout, self.impersonate
        )

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
        bookkeeping.discard_plan(directory)
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
                    bookkeeping.discard_plan(directory)
                return
        runner.check(result, "apply", shown=True)  # apply output streams live: its errors are on screen
        verb = "destroyed" if outcome.mode.destroy else "applied"
        self.echo(f"{env}: {verb} ({done}/{total}). Log: {runner.log_path}")

    # --- anything else terraform does -----------------------------------------------------------

    def terraform(
        self,
        env: str,
        args: list[str],
        *,
        render: bool = True,
        approval: Approval = ASK_NOBODY,
    ) -> int:
        """Run terraform with `args` in the environment's module, with dfinfra's binary, plugin cache and
        backend settings, after an init if one is due: `state list`, `import`, `output`, `force-unlock`...

        Terraform talks to the terminal directly (prompts included); returns its exit code. What would
        bypass dfinfra's guards is refused or guarded here: `apply` and `destroy` (dfinfra's own commands
        show the plan and refuse destructive changes), `-chdir` (another directory than the environment's),
        and in a protected environment every command that writes the state needs its name confirmed.
        """
        command = guards.passthrough_command(args)
        protected = self.specs.deployment.environments[env].protected
        guards.confirm_state_write(env, command, protected=protected, approval=approval)
        self._enter(self.module_dir(env), f"terraform {command}")
        directory = self._render(env, render)
        runner = self._runner(directory, "terraform")
        self._ensure_init(runner, directory)
        code = runner.interactive(args, self.echo)
        if (directory / ".terraform").is_dir():  # `init -upgrade`, `workspace select`: still dfinfra's doing;
            trust.seal_init(directory, "")  # sealed as it is now, and initialised afresh next time
        return code

    # --- bootstrap ------------------------------------------------------------------------

    def bootstrap(self, env: str, approval: Approval = ASK_NOBODY) -> PlanSummary:
        """Create (or adopt) the environment's state bucket: see `bootstrap.state_bucket`."""
        from dataform_infra.lifecycle.bootstrap import state_bucket

        return state_bucket(self, env, approval)
