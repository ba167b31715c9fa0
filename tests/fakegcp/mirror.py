"""Install the offline provider where `terraform init` finds it, with no network and no ~/.terraformrc.

Writes a filesystem mirror holding a launcher for `hashicorp/google` and `hashicorp/google-beta` at
each version whose facts the tests hold (7.45.0 and 8.7.0: a shell script running `launcher/` with the
current Python, told which version to serve; it asks the session's warm provider (`zygote.py`) to fork one, or
starts it cold) and a CLI config that makes the mirror the only
installation source for hashicorp providers. Terraform picks the version a module's constraint admits.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path

from tests.fakegcp.schema import VERSION_VARIABLE, VERSIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).resolve().with_name("launcher")  # hands over to the session's warm provider, if any


def _target() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}_{arch}"


def install(root: Path) -> Path:
    """Creates root/mirror and root/terraform.rc; returns the CLI config path (TF_CLI_CONFIG_FILE)."""
    mirror = root / "mirror"
    for version in VERSIONS:
        for name in ("google", "google-beta"):
            directory = mirror / "registry.terraform.io" / "hashicorp" / name / version / _target()
            directory.mkdir(parents=True, exist_ok=True)
            launcher = directory / f"terraform-provider-{name}_v{version}_x5"
            launcher.write_text(
                "#!/bin/sh\n"
                f"PYTHONPATH={shlex.quote(str(REPO_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}} {VERSION_VARIABLE}={version} "
                f'exec {shlex.quote(sys.executable)} -S {shlex.quote(str(LAUNCHER))} {name} "$@"\n'
            )
            launcher.chmod(0o755)
    config = root / "terraform.rc"
    config.write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
        f'plugin_cache_dir = "{root / "plugin-cache"}"\n'
    )
    (root / "plugin-cache").mkdir(exist_ok=True)
    return config


def environment(root: Path, store: Path) -> dict[str, str]:
    """Environment for terraform runs against the offline cloud."""
    env = dict(os.environ)
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(install(root)),
            # This cloud's own cache. dfinfra would otherwise use ~/.cache/dfinfra/plugin-cache, shared
            # by every checkout on the machine: another checkout's launcher (other paths, other hash)
            # replacing the cached provider mid-run made init fail with "Required plugins are not installed".
            "TF_PLUGIN_CACHE_DIR": str(root / "plugin-cache"),
            "FAKEGCP_STORE": str(store),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            "TF_INPUT": "0",
        }
    )
    return env
