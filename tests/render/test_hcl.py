"""Escaping and layout: no spec value can become HCL structure, and output is `terraform fmt` clean."""

import json
import subprocess

import pytest

from dataform_infra.render.hcl import Expr, Ident, layout, quote, to_hcl

HOSTILE = [
    "plain",
    'quote " inside',
    "back\\slash",
    "trailing backslash \\",
    "${var.secret}",
    "$${already escaped}",
    "%{ if true }x%{ endif }",
    "%%{",
    "$",
    "%",
    "new\nline",
    "tab\there",
    "carriage\rreturn",
    "\x01\x1f\x7f",
    'end" } resource "evil" "x" { #',
    "unicode: żółć 日本語 🚀",
    "\u2028line separator",
    "x" * 5000,
]


def test_quote_escapes_structure_and_templates():
    assert quote('a"b') == '"a\\"b"'
    assert quote("${x}") == '"$${x}"'
    assert quote("%{x}") == '"%%{x}"'
    assert quote("a\nb") == '"a\\nb"'
    assert quote("$x %y") == '"$x %y"'  # no brace: nothing to escape


def test_to_hcl_spells_values():
    assert to_hcl(True) == "true"
    assert to_hcl(3) == "3"
    assert to_hcl(["a", Expr.ref("x", "y")]) == '["a", x.y]'
    assert to_hcl({"k": "v"}) == '{ "k" = "v" }'
    assert to_hcl(Ident("name")) == "name"


def test_markers_refuse_anything_but_identifiers_and_references():
    with pytest.raises(ValueError):
        Ident('a" {')
    with pytest.raises(ValueError):
        Expr.ref("google_x", "a b")


@pytest.mark.terraform
def test_terraform_reads_back_every_hostile_string_exactly(tmp_path, terraform_bin, terraform_env):
    """Terraform's own parser is the judge (python-hcl2 mis-lexes `%%{`, so it cannot be)."""
    outputs = "".join(f'output "v{i}" {{\n  value = {quote(s)}\n}}\n\n' for i, s in enumerate(HOSTILE))
    (tmp_path / "main.tf").write_text(layout(outputs))

    def terraform(*args: str) -> str:
        result = subprocess.run(
            [terraform_bin, *args], capture_output=True, text=True, cwd=tmp_path, env=terraform_env, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    terraform("fmt", "-check")
    terraform("init", "-input=false")
    terraform("apply", "-input=false", "-auto-approve")
    values = json.loads(terraform("output", "-json"))
    assert sorted(values) == sorted(f"v{i}" for i in range(len(HOSTILE)))  # no extra structure appeared
    assert [values[f"v{i}"]["value"] for i in range(len(HOSTILE))] == HOSTILE


def test_layout_aligns_runs_like_terraform_fmt():
    text = (
        'resource "a" "b" {\n  x = 1\n  long_name = "v"\n\n  y = 2\n'
        "  block {\n    k = [\n      1,\n    ]\n    kk = 1\n  }\n}\n"
    )
    assert layout(text) == (
        'resource "a" "b" {\n  x         = 1\n  long_name = "v"\n\n  y = 2\n  block {\n    k = [\n      1,\n    ]\n'
        "    kk = 1\n  }\n}\n"
    )


def test_layout_squeezes_blank_lines():
    assert layout("a {\n\n\n  x = 1\n\n}\n\n\n\nb = 2\n\n") == "a {\n  x = 1\n}\n\nb = 2\n"


def test_layout_ignores_equals_inside_strings():
    assert layout('x = "a = b"\nlonger = "{"\n') == 'x      = "a = b"\nlonger = "{"\n'


def test_bidirectional_and_zero_width_controls_are_escaped_not_printed():
    """#22: a U+202E in a description reordered what a reviewer saw in the pull request."""
    from dataform_infra.render.hcl import quote

    for char in "\u202e\u2066\u061c\u200b\ufeff\u2028":
        quoted = quote(f"a{char}b")
        assert char not in quoted and quoted == f'"a\\u{ord(char):04x}b"'
