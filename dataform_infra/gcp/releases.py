"""`dfinfra release`: compile release configs now and make each compilation the one its workflows run.

A workflow config runs its release config's live compilation (`release_compilation_result`), never
the branch as it is. A new release config has none until its cron fires, and Google's provider updates
a release config with a full PATCH that empties it (terraform-provider-google#29179), so after an
ordinary apply the next scheduled run fails with "no release compilation result"
(`../shared/docs/dataform-operations.md` §a). This is the two-call recipe Google's own tooling uses:
create a compilation result from the release config (its Git ref and overrides), refuse it if it has
compilation errors, then set it live with an update mask naming only `release_compilation_result`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dataform_infra.errors import DfinfraError, GcpNotFound, ReleaseFailed, UsageError
from dataform_infra.gcp.clients import GoogleApis, call
from dataform_infra.spec.loader import Deployment
from dataform_infra.topology import Topology


@dataclass(frozen=True)
class Released:
    """One release config made live: which compilation its workflows now run, from which commit."""

    release: str
    config: str
    compilation: str
    commit: str

    def describe(self) -> str:
        commit = f" (commit {self.commit[:12]})" if self.commit else ""
        return f"release {self.release} now serves {self.compilation.rsplit('/', 1)[-1]}{commit}"

    def to_dict(self) -> dict[str, str]:
        return {"release": self.release, "config": self.config, "compilation": self.compilation, "commit": self.commit}


def config_names(deployment: Deployment, env: str, releases: list[str] | None = None) -> dict[str, str]:
    """Release name -> its release config's resource name, for `releases` (every one of `env` when None)."""
    spec = deployment.environments[env]
    known = [r.name for r in spec.releases]
    wanted = list(dict.fromkeys(releases)) if releases else known
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise UsageError(
            f"no release {', '.join(map(repr, unknown))} in environment {env!r} (its releases: "
            f"{', '.join(known) or 'none'})"
        )
    topology = Topology(deployment)
    return {name: topology.release_config_name(env, name) for name in wanted}


def release(
    deployment: Deployment,
    env: str,
    apis: GoogleApis,
    releases: list[str] | None = None,
    on_done: Callable[[Released], None] = lambda _: None,
) -> list[Released]:
    """Compile each release config of `env` (or the ones named) and make it live, reporting each as it goes
    live (`on_done`). A release that does not compile keeps serving what it served, and the others are still
    made live; ReleaseFailed then names the ones that failed."""
    client = apis.dataform()
    done: list[Released] = []
    failed: list[str] = []
    for name, config in config_names(deployment, env, releases).items():
        try:
            made = _make_live(client, env, name, config)
        except DfinfraError as exc:
            failed.append(f"{name}: {exc}")
            continue
        done.append(made)
        on_done(made)
    if failed:
        raise ReleaseFailed(
            f"{len(failed)} release(s) of {env} not made live (each keeps serving what it served): " + "; ".join(failed)
        )
    return done


def _make_live(client: Any, env: str, name: str, config: str) -> Released:
    repository = config.split("/releaseConfigs/")[0]
    try:
        compiled = call(
            f"compiling release {name}",
            client.create_compilation_result,
            parent=repository,
            compilation_result={"release_config": config},
        )
    except GcpNotFound:
        raise ReleaseFailed(
            f"release config {name} does not exist in {repository}: run `dfinfra apply {env}` first"
        ) from None
    if compiled.compilation_errors:
        errors = "; ".join(
            f"{e.path or e.action_target.name or 'project'}: {e.message}" for e in compiled.compilation_errors
        )
        raise ReleaseFailed(
            f"it did not compile ({compiled.name}): {errors}; fix the code and run `dfinfra release` again"
        )
    call(
        f"making {compiled.name} the live compilation of release {name}",
        client.update_release_config,
        release_config={"name": config, "release_compilation_result": compiled.name},
        update_mask={"paths": ["release_compilation_result"]},
    )
    return Released(name, config, compiled.name, compiled.resolved_git_commit_sha)
