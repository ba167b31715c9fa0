"""`hclread` (tree-sitter) reads HCL exactly as python-hcl2, an independent parser, does; a syntax error
names its line and column; `lint` stays fast because the reading never loads a pure-Python parser."""

import re
import subprocess
import sys

import hcl2
import pytest

from dataform_infra import hclread, policy
from dataform_infra.errors import UsageError
from tests.conftest import all_modules, rendered

EVERY_CONSTRUCT = """\
# a file comment
locals {
  agent = "serviceAccount:service-123@gcp-sa-dataform.iam.gserviceaccount.com"
  n     = 3
  flag  = true
  roles = ["roles/a", "roles/b"]
}

resource "google_project_iam_member" "x" {
  # Project-wide opt-in: a reason long enough to count
  for_each = toset([
    "roles/bigquery.jobUser",
    "roles/\\u006fwner",
  ])
  project = var.project // trailing
  role    = each.value
  member  = "serviceAccount:${google_service_account.r.email}"
  ratio   = 1.5
  neg     = -1
  sum     = 2 - 1
  not     = !var.x
  heredoc = <<-EOT
    hello ${var.x}
  EOT
  enabled = false
  nothing = null
  map     = { a = "b", "c" = 1 }
  spaced  = toset(["two  spaces"])
  inline = [
    "roles/a", # an inline comment is the value's, not the block's
  ]
  cond    = var.x ? "a" : "b"
  call    = format("%s-%s", local.n, var.x[0])
  /* a block comment */
  dynamic "d" {
    for_each = []
    content {}
  }
  lifecycle {
    prevent_destroy = true
  }
}

data "google_project" "p" {}
resource "a" "b" {
  provider = google-beta
  x        = "y"
}
"""


def _comparable(document: dict) -> dict:
    """python-hcl2 also keeps the file's own comments at the top level, and comments inside a value apart
    (`__inline_comments__`); no rule reads either."""

    def without_inline(value):
        if isinstance(value, dict):
            return {k: without_inline(v) for k, v in value.items() if k != "__inline_comments__"}
        if isinstance(value, list):
            return [without_inline(v) for v in value]
        return value

    return without_inline({k: v for k, v in document.items() if k != "__comments__"})


@pytest.mark.parametrize(("spec_set", "env"), all_modules())
def test_every_rendered_file_reads_as_python_hcl2_reads_it(spec_set, env):
    for name, text in rendered(spec_set)[env].items():
        if name.endswith(".tf"):
            assert hclread.read(text) == _comparable(hcl2.loads(text)), name


def test_every_construct_reads_as_python_hcl2_reads_it():
    document = hclread.read(EVERY_CONSTRUCT)
    assert document == _comparable(hcl2.loads(EVERY_CONSTRUCT))
    body = document["resource"][0]['"google_project_iam_member"']['"x"']
    assert body["for_each"] == '${toset(["roles/bigquery.jobUser", "roles/\\u006fwner"])}'  # one line, as a literal
    assert body["spaced"] == '${toset(["two  spaces"])}'  # a string keeps its spaces (they are for_each keys)
    assert [c["value"] for c in body["__comments__"]] == [
        "Project-wide opt-in: a reason long enough to count",
        "trailing",
        "a block comment",
    ]


def test_what_the_grammar_cannot_read_python_hcl2_reads():
    """tree-sitter-hcl 1.2 rejects signed and capital exponents, which HCL allows."""
    text = 'resource "google_project_iam_member" "m" {\n  ratio = -2e-3\n  big = 2E3\n  role = "roles/owner"\n}\n'
    with pytest.raises(ValueError, match=r"^the grammar's error$"):
        hclread._read_with_python_hcl2("x = ", "the grammar's error")  # neither reads it: the grammar's error
    assert hclread.read(text) == _comparable(hcl2.loads(text))
    assert "no-primitive-roles" in {f.rule for f in policy.check(policy.facts_from_hcl({"main.tf": text}))}


def test_an_exponent_the_grammar_splits_is_read_by_python_hcl2():
    """tree-sitter-hcl reads `n = 1e3` then a block as `n = 1` and a block of type `e3`, with no error."""
    text = (
        'data "google_iam_policy" "p" {\n  n = 1e3\n  binding {\n    role = "roles/owner"\n  }\n}\n'
        'resource "google_project_iam_member" "m" {\n  role = "roles/owner"\n}\n'
    )
    document = hclread.read(text)
    assert document == _comparable(hcl2.loads(text))
    assert document["data"][0]['"google_iam_policy"']['"p"']["binding"][0]["role"] == '"roles/owner"'


def test_a_for_each_over_several_lines_is_expanded_and_its_escapes_decoded():
    facts = policy.facts_from_hcl({"main.tf": EVERY_CONSTRUCT})
    roles = sorted(f.attrs["role"] for f in facts if f.type == "google_project_iam_member")
    assert roles == ["roles/bigquery.jobUser", "roles/owner"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('resource "a" "b" {\n  x = \n}\n', "line 2, column 3: unexpected `x =`"),
        ('resource "a" "b" {\n  x = "y"\n', "line 3, column 1"),
        ('resource "a" "b" {\n  x = "y"\n}\n}\n', "line 4, column 1"),
        ("locals {\n  a = [1, 2\n}\n", "line 3, column 1"),
    ],
)
def test_a_syntax_error_names_its_line_and_column(text, where):
    with pytest.raises(ValueError, match=where):
        hclread.read(text)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("x = 0x10\n", "line 1, column 5: `0x10` is not a number"),
        ('resource = 1\nresource "a" "b" {}\n', "line 2, column 1: `resource` is both an attribute and a block"),
        ('resource "a" "b" {\n  x = 1\n  x = 2\n}\n', "line 3, column 3: `x` is given twice"),
        ("locals {\n  __comments__ = 1\n}\n", "line 2, column 3: `__comments__` is a name the reader uses itself"),
        ("b {" * 3000 + "}" * 3000, "nested too deeply"),
    ],
)
def test_what_terraform_refuses_is_an_error_never_a_traceback(text, error):
    with pytest.raises(ValueError, match=re.escape(error)):
        hclread.read(text)


def test_an_opt_in_is_a_comment_of_the_block_not_of_a_value_or_a_nested_block():
    text = (
        'resource "google_project_iam_member" "m" {\n  project = "p"\n  role = "roles/bigquery.dataEditor"\n'
        '  member = ("user:a@b.com" # Project-wide opt-in: a reason long enough to count\n  )\n'
        "  lifecycle {\n    # Project-wide opt-in: a reason long enough to count\n  }\n}\n"
    )
    facts = policy.facts_from_hcl({"main.tf": text})
    assert [f.comments for f in facts] == [()]
    assert {f.severity for f in policy.check(facts)} == {"violation"}


def test_lint_names_the_file_with_the_syntax_error(tmp_path):
    (tmp_path / "good.tf").write_text('resource "a" "b" {}\n')
    (tmp_path / "bad.tf").write_text('resource "a" "b" {\n  x = \n}\n')
    with pytest.raises(UsageError, match=r"bad\.tf: line 2, column 3: unexpected `x =`: not valid Terraform syntax"):
        policy.lint([tmp_path])


def test_lint_loads_no_pure_python_parser(tmp_path):
    """The reading is tree-sitter's (C): python-hcl2 and lark, slower to load than all of lint, stay out."""
    (tmp_path / "main.tf").write_text(EVERY_CONSTRUCT)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dataform_infra", "lint", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert result.returncode == 1 and "no-primitive-roles" in result.stdout + result.stderr  # roles/owner
    assert "tree_sitter" in modules and not {"hcl2", "lark"} & modules
