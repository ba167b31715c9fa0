"""`dfinfra migrate`: move state entries to the module that now declares them, destroying nothing.

dfinfra 0.x put every environment's release and workflow configs, and the grants on their runners, in
the host module; now each environment's module owns what its spec declares (see render/module.py).
Terraform's `moved` blocks cannot cross states, and `import` blocks would need every object's import
id, so this does what `terraform state mv -state-out` was made for, on copies of the states:

1. pull every environment's state (kept as a backup under OUT/.migrate/<time>/, mode 0600);
2. match each managed entry to the module declaring the same Google object (`ownership.py`);
3. `terraform state mv` on local copies in a scratch directory (terraform edits the JSON, bumps serials);
4. push the states that gained entries (moved out of throwaway copies) first, and only then remove the
   entries from their old states and push those. A crash in between leaves an object in both states, never
   in neither; running `migrate` again finishes the job (an entry already in its new home is only removed
   from the old state).

Pushing is refused by terraform if anyone wrote the state since the pull (serial and lineage checks).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dataform_infra.errors import TerraformError
from dataform_infra.lifecycle import Lifecycle
from dataform_infra.ownership import Key, declared, state_key
from dataform_infra.terraform.runner import TerraformRunner


@dataclass(frozen=True)
class Move:
    """One state entry and where it goes. `forget`: already in its new home, only removed from `source`."""

    source: str
    address: str
    destination: str
    new_address: str
    forget: bool = False

    def describe(self) -> str:
        if self.forget:
            return f"{self.source}: {self.address} is already managed by {self.destination}: removed from {self.source}"
        return f"{self.source}: {self.address} -> {self.destination}: {self.new_address}"

    def to_dict(self) -> dict[str, object]:
        return {
            "from": {"env": self.source, "address": self.address},
            "to": {"env": self.destination, "address": self.new_address},
            "forget": self.forget,
        }


@dataclass(frozen=True)
class Migration:
    moves: list[Move]
    backup: Path | None

    def to_dict(self) -> dict[str, object]:
        return {"moves": [m.to_dict() for m in self.moves], "backup": str(self.backup) if self.backup else None}


def _entries(state: dict[str, Any]) -> dict[str, Key]:
    """Address -> identity key of every single-instance managed resource of the root module."""
    found: dict[str, Key] = {}
    for resource in state.get("resources", []):
        instances = resource.get("instances", [])
        if resource.get("mode") != "managed" or resource.get("module") or len(instances) != 1:
            continue
        key = state_key(resource["type"], instances[0].get("attributes") or {})
        if key is not None:
            found[f"{resource['type']}.{resource['name']}"] = key
    return found


def plan_moves(states: dict[str, dict[str, Any]], owners: dict[Key, tuple[str, str]]) -> list[Move]:
    """The moves that put every entry of `states` where `owners` (key -> (env, address)) declares it."""
    entries = {env: _entries(state) for env, state in states.items()}
    moves: list[Move] = []
    for env, found in entries.items():
        for address, key in found.items():
            if key not in owners:
                continue  # no longer declared: the next plan of `env` removes it, as for any spec change
            destination, new_address = owners[key]
            if (destination, new_address) == (env, address):
                continue
            already = entries.get(destination, {}).get(new_address) == key
            if destination != env and already:
                moves.append(Move(env, address, destination, new_address, forget=True))
            elif new_address in entries.get(destination, {}) and not already:
                raise TerraformError(
                    f"cannot move {env}: {address} to {destination}: {new_address}: that address already holds "
                    "another object; nothing changed"
                )
            else:
                moves.append(Move(env, address, destination, new_address))
    return moves


def migrate(lifecycle: Lifecycle, *, dry_run: bool = False) -> Migration:
    """Move every state entry of the deployment to the module that now declares it (see module doc)."""
    specs = lifecycle.specs
    envs: list[str] = specs.apply_order()
    specs.write(lifecycle.out, envs, lock_timeout=lifecycle.lock_timeout, waiting=lifecycle.echo)
    owners: dict[Key, tuple[str, str]] = {}
    for env in envs:
        for key, address in declared(specs.module(env)).items():
            owners[key] = (env, address)

    runners: dict[str, TerraformRunner] = {}
    texts: dict[str, str] = {}
    for env in envs:
        runner = runners[env] = lifecycle.initialised_runner(env, "migrate")
        text = runner.check(runner.run("state pull"), "state pull").stdout
        if text.strip():
            texts[env] = text
    states = {env: json.loads(text) for env, text in texts.items()}
    moves = plan_moves(states, owners)
    if dry_run or not moves:
        return Migration(moves, None)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    backup = lifecycle.out / ".migrate" / stamp
    backup.mkdir(parents=True, exist_ok=True)
    for env, text in texts.items():
        _write_private(backup / f"{env}.tfstate", text)

    with tempfile.TemporaryDirectory(prefix="dfinfra-migrate-") as scratch:
        work = Path(scratch)
        files = {env: work / f"{env}.tfstate" for env in envs}
        copies = {env: work / f"{env}.copy.tfstate" for env in envs}
        for env, text in texts.items():
            _write_private(files[env], text)
            _write_private(copies[env], text)
        mover = lifecycle.scratch_runner(work)

        def state(command: str, *args: str, **options: Any) -> None:
            mover.check(mover.run(f"state {command}", *args, lock=False, **options), f"state {command}")

        crossing = [m for m in moves if m.destination != m.source and not m.forget]
        # 1. Every destination gains its entries (moved out of a throwaway copy of the source) and is pushed.
        for move in crossing:
            state(
                "mv",
                move.address,
                move.new_address,
                state=str(copies[move.source]),
                state_out=str(files[move.destination]),
            )
        gained = list(dict.fromkeys(m.destination for m in crossing))
        for env in gained:
            runners[env].check(
                runners[env].run("state push", str(files[env]), lock_timeout=lifecycle.lock_timeout), "state push"
            )
        # 2. Only then do the sources lose them (and entries renamed within a module move). A source that also
        # gained entries is pulled again: its state now carries them, and the serial the backend expects.
        for env in dict.fromkeys(m.source for m in moves):
            runner = runners[env]
            if env in gained:
                _write_private(files[env], runner.check(runner.run("state pull"), "state pull").stdout)
            for move in (m for m in moves if m.source == env):
                if move.destination == move.source:
                    state("mv", move.address, move.new_address, state=str(files[env]))
                else:
                    state("rm", move.address, state=str(files[env]))
            runner.check(runner.run("state push", str(files[env]), lock_timeout=lifecycle.lock_timeout), "state push")
    return Migration(moves, backup)


def _write_private(path: Path, text: str) -> None:
    """State names every object and can hold sensitive attributes: readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
