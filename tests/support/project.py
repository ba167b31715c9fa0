"""A user's checkout driven through the `dfinfra` CLI against the offline cloud (lifecycle, secrets, doctor)."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

from dataform_infra.spec.loader import load_deployment
from tests.support.specsets import REPO


class Project:
    """A checkout with the shipped environments (unique state buckets) and an offline cloud."""

    def __init__(self, root: Path, cloud, specs: Path = REPO / "environments"):
        self.root = root
        self.cloud = cloud
        suffix = uuid.uuid4().hex[:8]
        (root / "environments").mkdir(parents=True)
        for spec in specs.glob("*.yaml"):
            (root / "environments" / spec.name).write_text(spec.read_text().replace("-tfstate", f"-tfstate-{suffix}"))
        cloud.seed(load_deployment(root / "environments"), buckets=False)

    @classmethod
    def restored(cls, root: Path, cloud) -> "Project":
        """A checkout that already exists (copied from a snapshot), in `cloud`."""
        project = cls.__new__(cls)
        project.root, project.cloud = root, cloud
        return project

    def spec(self, env: str) -> Path:
        return self.root / "environments" / f"{env}.yaml"

    def popen(self, *args: str, env: dict | None = None, stdin: bool = False) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "dataform_infra", *args],
            cwd=self.root,
            env={**self.cloud.env, **(env or {})},
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, *args: str, env: dict | None = None, expect: int | None = 0, stdin: str | None = None) -> str:
        process = self.popen(*args, env=env, stdin=stdin is not None)
        output = process.communicate(input=stdin, timeout=600)[0]
        assert "Traceback" not in output, output
        if expect is not None:
            assert process.returncode == expect, f"dfinfra {' '.join(args)} -> {process.returncode}:\n{output}"
        return output

    def state(self, env: str) -> dict:
        spec = load_deployment(self.root / "environments").environments[env]
        return json.loads(self.cloud.gcs.read(spec.state.bucket, f"{spec.state.prefix}/default.tfstate"))
