"""Run terraform commands for one module: argv from python-terraform, process handling of our own.

python-terraform (the declared dependency) builds the command lines. Its execution path is not
used, because of defects we must not inherit:
- `Terraform.destroy()` passes `-force`, removed in Terraform 0.15: we plan with `-destroy` instead.
- `variables=` writes temporary `.tfvars.json` files and logs their values at DEBUG: we never pass
  variables (dfinfra has none, and secrets never go through Terraform).
- `cmd()` captures output all-or-nothing, and its `synchronous=False` leaks into argv as
  `-synchronous=false`: we start the process ourselves and stream it line by line.
- it only passes `os.environ`, and re-reads a local state file after every command.
Here each run gets a private environment (`TF_IN_AUTOMATION`, `TF_INPUT=0`, a shared plugin
cache), its output teed to a log file, and Ctrl-C forwarded to terraform exactly once per press
(terraform runs in its own session, so a terminal's SIGINT reaches only dfinfra).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from python_terraform import IsFlagged, Terraform

from dataform_infra import trust
from dataform_infra.cache import cache_dir
from dataform_infra.errors import Interrupted, StateLocked, TerraformError
from dataform_infra.terraform.binary import TerraformBinary
from dataform_infra.terraform.summary import IamNames, PlanSummary, summarise

LineSink = Callable[[str, str], None]  # (stream name, line)
KEEP_LOGS_ENV = "DFINFRA_KEEP_LOGS"
DEFAULT_KEEP_LOGS = "50"


@dataclass(frozen=True)
class PlanMode:
    """What a plan covers, beyond the module: terraform's -destroy, -target, -replace and -refresh-only.

    Part of what a saved plan was made from: `apply` reuses a plan only for the same mode."""

    destroy: bool = False
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    refresh_only: bool = False

    @property
    def creates_or_updates(self) -> bool:
        """May it create or update objects? Not a destroy nor a refresh-only plan: only such plans need the secrets
        ephemeral variables carry (a channel's token)."""
        return not (self.destroy or self.refresh_only)

    def to_dict(self) -> dict[str, object]:
        return {
            "destroy": self.destroy,
            "targets": list(self.targets),
            "replace": list(self.replace),
            "refresh_only": self.refresh_only,
        }


@dataclass(frozen=True)
class RunResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    interrupted: int = 0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def diagnostics(text: str) -> str:
    """Terraform's error blocks, without the box-drawing decoration."""
    lines = [re.sub(r"^[│╷╵]\s?", "", line) for line in text.splitlines()]
    return "\n".join(line for line in lines if line.strip()).strip()


class TerraformRunner:
    def __init__(
        self,
        binary: TerraformBinary,
        module_dir: Path,
        log_dir: Path,
        lock_timeout: str = "60s",
        impersonate: str | None = None,
        module_lock: int | None = None,
    ):
        self.binary = binary
        self.module_dir = module_dir
        self.log_dir = log_dir
        self.lock_timeout = lock_timeout
        self.impersonate = impersonate
        # The module lock's descriptor, inherited by terraform: a terraform that outlives dfinfra (SIGKILLed)
        # keeps the module locked until it exits, so no second dfinfra starts in it meanwhile.
        self._inherited = (module_lock,) if module_lock is not None else ()
        self._builder = Terraform(working_dir=str(module_dir), terraform_bin_path=binary.path)
        # Values terraform reads from its environment only (`TF_VAR_*` of ephemeral variables: a channel's token).
        self.secret_env: dict[str, str] = {}
        self.log_path: Path | None = None

    def argv(self, command: str, *args: str, **options: Any) -> list[str]:
        return list(self._builder.generate_cmd_string(command, *args, **options))

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"})
        if self.secret_env:
            # Debug logs print request bodies (a channel's token among them) to the output dfinfra logs: never
            # while terraform holds a secret.
            for name in [n for n in env if n.startswith("TF_LOG")]:
                del env[name]
            env.update(self.secret_env)
        if self.impersonate:
            # The Google provider and the gcs state backend both read these: no credential in argv.
            env["GOOGLE_IMPERSONATE_SERVICE_ACCOUNT"] = self.impersonate
            env["GOOGLE_BACKEND_IMPERSONATE_SERVICE_ACCOUNT"] = self.impersonate
        if "TF_PLUGIN_CACHE_DIR" not in env:
            cache = cache_dir("plugin-cache")
            cache.mkdir(parents=True, exist_ok=True)
            env["TF_PLUGIN_CACHE_DIR"] = str(cache)
        return env

    @contextlib.contextmanager
    def carrying(self, secret_env: dict[str, str]) -> Iterator[None]:
        """Terraform commands run inside get `secret_env` (`TF_VAR_*` of ephemeral variables) in their
        environment, and only they: never argv, never a log."""
        self.secret_env = secret_env
        try:
            yield
        finally:
            self.secret_env = {}

    def open_log(self, operation: str) -> Path:
        """A new log for this run; the oldest beyond $DFINFRA_KEEP_LOGS (default 50) per module go."""
        trust.own_dir(self.log_dir.parent)  # `.dfinfra/`, then `logs/`: never through a link
        trust.own_dir(self.log_dir)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        self.log_path = self.log_dir / f"{stamp}-{operation}.log"
        keep = max(1, int(os.environ.get(KEEP_LOGS_ENV, DEFAULT_KEEP_LOGS)))
        older = sorted(p for p in self.log_dir.glob("*.log") if p != self.log_path)
        for stale in older[: max(0, len(older) - (keep - 1))]:  # names sort by time
            stale.unlink(missing_ok=True)
        return self.log_path

    def run(self, command: str, *args: str, on_line: LineSink | None = None, **options: Any) -> RunResult:
        """Run terraform with its output going to files next to the log, never to a pipe.

        Terraform runs in its own session and writes to files, so nothing dfinfra's own fate does
        (killed with SIGKILL, its stdout a closed pipe as in `dfinfra apply | head`) can stop it
        midway: it finishes, writes state and releases the lock. dfinfra tails the files.
        """
        argv = self.argv(command, *args, **options)
        log_path = self.log_path or self.open_log(command.replace(" ", "-"))
        output: dict[str, list[str]] = {"stdout": [], "stderr": []}
        lock = threading.Lock()
        streams = {name: log_path.with_name(f"{log_path.name}.{name}") for name in output}
        with os.fdopen(trust.open_new(log_path), "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(argv)}\n")
            log.flush()
            truncate = os.O_WRONLY | os.O_TRUNC
            finished = threading.Event()
            sink: list[LineSink] = [on_line] if on_line else []

            def tail(name: str, path: Path) -> None:
                with path.open(encoding="utf-8", errors="replace") as stream:
                    pending = ""
                    while True:
                        chunk = stream.readline()
                        if not chunk:
                            if finished.is_set():
                                chunk = stream.read()
                                if not chunk and not pending:
                                    return
                                chunk, pending = pending + chunk, ""
                                if not chunk:
                                    return
                            else:
                                time.sleep(0.02)
                                continue
                        if not chunk.endswith("\n") and not finished.is_set():
                            pending += chunk  # a line still being written
                            continue
                        line, pending = pending + chunk, ""
                        with lock:
                            output[name].append(line)
                            log.write(line)
                            log.flush()
                        try:
                            for show in sink:
                                show(name, line.rstrip("\n"))
                        except OSError:  # our reader went away (a closed pipe): keep draining, terraform goes on
                            sink.clear()

            with (
                os.fdopen(trust.open_new(streams["stdout"], truncate), "w") as out,
                os.fdopen(trust.open_new(streams["stderr"], truncate), "w") as err,
            ):
                readers = [threading.Thread(target=tail, args=item, daemon=True) for item in streams.items()]
                for reader in readers:
                    reader.start()
                try:
                    process, interrupts = supervise(
                        lambda: subprocess.Popen(
                            argv,
                            cwd=self.module_dir,
                            env=self.environment(),
                            stdin=subprocess.DEVNULL,
                            stdout=out,
                            stderr=err,
                            start_new_session=True,
                            pass_fds=self._inherited,
                        ),
                        on_line,
                    )
                finally:
                    finished.set()
                    for reader in readers:
                        reader.join()
            log.write(f"# exit status {process.returncode}\n")
        for path in streams.values():
            path.unlink(missing_ok=True)
        return RunResult(
            tuple(argv), process.returncode, "".join(output["stdout"]), "".join(output["stderr"]), interrupts
        )

    def interactive(self, args: list[str], on_note: Callable[[str], None]) -> int:
        """Terraform with `args` on dfinfra's own terminal (its prompts included), stopped the way `run` stops
        it: in its own session, so a Ctrl-C reaches it once, through dfinfra, as a graceful stop; SIGTERM and
        SIGHUP likewise; dfinfra waits for it to exit. Returns terraform's exit code."""
        environment = self.environment()
        environment.pop("TF_INPUT", None)  # interactive commands (force-unlock) may ask
        process, _ = supervise(
            lambda: subprocess.Popen(
                [self.binary.path, *args],
                cwd=self.module_dir,
                env=environment,
                start_new_session=True,
                pass_fds=self._inherited,
            ),
            lambda stream, line: on_note(line),
        )
        return process.returncode

    # --- commands -------------------------------------------------------------------------

    def check(self, result: RunResult, what: str, shown: bool = False) -> RunResult:
        """`result` if terraform succeeded, else the error to raise. `shown`: terraform's output was
        already streamed to the user, so the error points at it instead of printing it again."""
        if result.returncode in (0,) or (result.returncode == 2 and "-detailed-exitcode" in result.argv):
            return result
        if "Error acquiring the state lock" in result.output:
            raise StateLocked(self._lock_message(result.output))
        if "could not find default credentials" in result.output:
            raise TerraformError(
                f"terraform {what} in {self.module_dir.name} found no Google credentials: run `gcloud auth "
                "application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or use Workload Identity "
                "Federation in CI; add --impersonate-service-account to act as a deployer account"
            )
        log = f"(full log: {self.log_path})" if self.log_path else ""
        if shown:
            raise TerraformError(f"terraform {what} failed in {self.module_dir}: its errors are above {log}")
        detail = diagnostics(result.stderr) or diagnostics(result.stdout)[-4000:]
        raise TerraformError(f"terraform {what} failed in {self.module_dir}:\n{detail}\n{log}")

    def _lock_message(self, text: str) -> str:
        info = dict(re.findall(r"^\s*[│]?\s*(ID|Path|Who|Created|Operation):\s*(.+?)\s*$", text, re.M))
        lock_id = info.get("ID", "<lock id>")
        return (
            f"the state of {self.module_dir.name} is locked by {info.get('Who', 'another run')} "
            f"(operation {info.get('Operation', '?')}, since {info.get('Created', '?')}, lock {lock_id}) and it was "
            f"not released within --lock-timeout {self.lock_timeout}. If that run is no longer alive, "
            "release it with:\n"
            f"  {self.binary.path} -chdir={self.module_dir} force-unlock {lock_id}"
        )

    def init(self, on_line: LineSink | None = None, *, upgrade: bool = False) -> RunResult:
        """`terraform init`; `upgrade`: let the lock file move to the newest versions the module admits."""
        result = self.run(
            "init",
            on_line=on_line,
            input=False,
            no_color=IsFlagged,
            lock_timeout=self.lock_timeout,
            upgrade=IsFlagged if upgrade else None,
        )
        return self.check(result, "init")

    def plan(self, plan_file: Path, mode: PlanMode | None = None, on_line: LineSink | None = None) -> RunResult:
        mode = mode or PlanMode()
        result = self.run(
            "plan",
            on_line=on_line,
            input=False,
            no_color=IsFlagged,
            detailed_exitcode=IsFlagged,
            lock_timeout=self.lock_timeout,
            out=str(plan_file),
            destroy=IsFlagged if mode.destroy else None,
            refresh_only=IsFlagged if mode.refresh_only else None,
            target=list(mode.targets) or None,
            replace=list(mode.replace) or None,
        )
        return self.check(result, "plan")

    def show_json(self, plan_file: Path) -> str:
        return self.check(self.run("show", str(plan_file), json=IsFlagged, no_color=IsFlagged), "show").stdout

    def show_plan(
        self,
        plan_file: Path,
        refresh_only: bool = False,
        names: IamNames | None = None,
        labels: dict[str, str] | None = None,
    ) -> PlanSummary:
        """The one reading of a saved plan: `terraform show -json`, summarised."""
        try:
            plan = json.loads(self.show_json(plan_file))
        except ValueError:
            raise TerraformError(f"terraform show -json {plan_file} printed no JSON (log: {self.log_path})") from None
        return summarise(plan, refresh_only, names, labels)

    def apply(self, plan_file: Path, on_line: LineSink | None = None) -> RunResult:
        return self.run(
            "apply", str(plan_file), on_line=on_line, input=False, no_color=IsFlagged, lock_timeout=self.lock_timeout
        )

    def import_resource(self, address: str, resource_id: str) -> RunResult:
        return self.run("import", address, resource_id, input=False, no_color=IsFlagged, lock_timeout=self.lock_timeout)

    def state_rm(self, addresses: list[str]) -> RunResult:
        """Forget `addresses`: they leave the state, the objects stay in Google Cloud."""
        return self.check(
            self.run("state rm", *addresses, no_color=IsFlagged, lock_timeout=self.lock_timeout), "state rm"
        )

    def state_list(self) -> list[str]:
        result = self.run("state list", no_color=IsFlagged)
        return result.stdout.split() if result.returncode == 0 else []


def supervise(
    start: Callable[[], subprocess.Popen[bytes]], on_line: LineSink | None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start terraform and wait for it, forwarding SIGINT, SIGTERM and SIGHUP (a Ctrl-C, a cancelled CI
    job, `timeout`, a closed terminal): the first asks terraform to stop gracefully (it saves state and
    releases the lock), the second stops it at once. dfinfra itself waits for terraform to exit. The
    handlers are in place before terraform starts: a signal that came first means terraform is never
    started (Interrupted); one during the start is forwarded once it has, never a KeyboardInterrupt that
    leaves it running unwatched. Returns the process and the signals seen."""
    if threading.current_thread() is not threading.main_thread():
        process = start()
        process.wait()
        return process, 0
    count = 0
    started: list[subprocess.Popen[bytes]] = []
    early: list[int] = []  # signals that came before terraform had started

    def send(signum: int) -> None:
        if started[0].poll() is None:
            # Terraform stops gracefully on SIGINT or SIGTERM; a hang-up is an interrupt too.
            started[0].send_signal(signal.SIGINT if signum == signal.SIGHUP else signum)

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        if started:
            send(signum)
        else:
            early.append(signum)
        if on_line:
            name = signal.Signals(signum).name
            note = (
                f"{name}: asking terraform to stop gracefully (state is saved); interrupt again to stop now"
                if count == 1
                else f"second {name}: terraform stops immediately; state may miss the last changes"
            )
            with contextlib.suppress(OSError):
                on_line("dfinfra", note)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in handled}
    try:
        if early:
            name = signal.Signals(early[0]).name
            raise Interrupted(f"{name} before terraform started: nothing was run")
        started.append(start())
        for signum in early:
            send(signum)
        while True:
            try:
                started[0].wait()
                break
            except InterruptedError:
                continue
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return started[0], count
