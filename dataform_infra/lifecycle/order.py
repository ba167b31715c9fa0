"""The order environments are applied in, and the check that stops a wrong one before terraform runs.

A target's release and workflow configs live in its host's repository, so the host is applied first; destroying
the host takes the targets' configs with it, so the targets are destroyed first. Whether the other side is there
yet is read from its state (`state_of`), never guessed from the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from dataform_infra import resource_types as types
from dataform_infra.errors import Refused
from dataform_infra.render.module import ReleaseConfig, WorkflowConfig
from dataform_infra.specset import SpecSet
from dataform_infra.terraform.runner import PlanMode

NO_BUCKET = "The state bucket does not exist yet"
# What a host module's state named its one repository before repositories were named after themselves
# (until the next apply of the host moves it).
LEGACY_REPOSITORY = f"{types.REPOSITORY.name}.this"

StateOf = Callable[[str], list[str]]  # an environment -> the addresses its state holds


def apply_order(specs: SpecSet, envs: list[str], *, destroy: bool = False) -> list[str]:
    """`envs` in the directory's apply order (each host first, then the environments whose configs it holds),
    reversed for a destroy."""
    order = [e for e in specs.apply_order() if e in envs]
    return order[::-1] if destroy else order


def check_order(specs: SpecSet, env: str, mode: PlanMode, *, done: Collection[str], state_of: StateOf) -> None:
    """Stop before terraform when the order is wrong (`done`: the environments this process applied or
    destroyed already)."""
    top = specs.topology_of(env)
    host = top.host_name
    if mode.destroy and env == host:
        others = [t for t in top.apply_order() if t != host and t not in done]
        alive = [t for t in others if state_of(t)]
        if alive:
            raise Refused(
                f"refusing to destroy {host}: its repository holds the configs of {', '.join(alive)}, whose "
                f"state still lists resources. Destroy {' and '.join(alive)} first (or `dfinfra destroy --all`, "
                "which destroys the targets before the host); nothing destroyed."
            )
    elif not mode.destroy and env != host and host not in done:
        waiting = _waiting_for_host(specs, env, state_of)
        if waiting:
            raise Refused(
                f"{waiting}: apply {host} first (`dfinfra apply {host}`, or `dfinfra apply --all`, which applies "
                "the host first); nothing applied."
            )


def _waiting_for_host(specs: SpecSet, env: str, state_of: StateOf) -> str | None:
    """Why `env` cannot be applied before the host, or None: its configs live in host repositories the
    host's state does not hold yet (without configs, its grants name the service agent the host's first
    apply creates)."""
    module = specs.module(env)
    host = specs.topology_of(env).host_name
    held = set(state_of(host))
    configs: list[ReleaseConfig | WorkflowConfig] = [*module.releases, *module.workflows]
    if not configs:
        if any(a.startswith(f"{types.REPOSITORY.name}.") for a in held):
            return None
        agent = f"the Dataform service agent that {host} creates"
        return f"{env}'s grants name {agent}, and {host}'s state holds no repository yet"
    homes = {c.home.name for c in configs}
    wanted = {view.address: view.hosted.name for view in specs.module(host).repositories if view.hosted.name in homes}
    if LEGACY_REPOSITORY in held and specs.topology_of(env).single_repository:
        return None  # applied before repositories were named after themselves: the same repository
    missing = [f"repository {name}" for address, name in wanted.items() if address not in held]
    if not missing:
        return None
    return (
        f"{env}'s release and workflow configs live in {', '.join(missing)}, which {host} creates, and {host}'s "
        "state holds no such repository yet"
    )
