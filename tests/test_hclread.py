"""`hclread` (tree-sitter) reads HCL exactly as python-hcl2, an independent parser, does; a syntax error
names its line and column; `lint` stays fast because the reading never loads a pure-Python parser."""

import re
import subprocess
import sys

import hcl2
import pytest

from dataform_infra import hclread, policy
from dataform_infra.errors import UsageError
from tests.support.specsets import all_modules, rendered

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


# --- evaluation: what Terraform would make of a value, where lint can know it -------------------------------

SCOPE = {"local": {"r": "owner", "names": ["viewer", "owner"], "m": {"a": {"role": "roles/editor"}}}}


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ('"roles/owner"', "roles/owner"),
        ('"roles/\\u006fwner"', "roles/owner"),
        ('"a$${b}%%{c}"', "a${b}%{c}"),  # escaped template sequences are literal text
        ('"roles/${"owner"}"', "roles/owner"),
        ('"roles/${"${"ow"}${"ner"}"}"', "roles/owner"),  # nested templates
        ('"  roles/${"own"} er  "', "  roles/own er  "),  # the grammar drops a literal's spaces; the source keeps them
        ('"roles/${local.r}"', "roles/owner"),
        ('"${local.names}"', ["viewer", "owner"]),  # one interpolation alone: its value, unconverted
        ('"n=${1}, ${true}, ${1.5}"', "n=1, true, 1.5"),
        ('"<<-EOT\n    roles/${local.r}\n      x\n    EOT"', "roles/owner\n  x\n"),  # a heredoc as the reader quotes it
        ('"<<EOT\n  a\\n\nEOT"', "  a\\n\n"),  # a heredoc has no escapes
        ('${join("", ["roles/", "owner"])}', "roles/owner"),
        ('${join("/", concat(["roles"], [local.r]))}', "roles/owner"),
        ('${format("roles/%s", local.r)}', "roles/owner"),
        ('${lower(trimspace("  ROLES/OWNER "))}', "roles/owner"),
        ('${replace("roles/x", "x", local.r)}', "roles/owner"),
        ("${element(local.names, 3)}", "owner"),
        ('${lookup(local.m, "b", "none")}', "none"),
        ('${toset(["b", "a", "b"])}', ["a", "b"]),
        ("${local.m.a.role}", "roles/editor"),
        ('${local.m["a"]["role"]}', "roles/editor"),
        ("${local.names[1]}", "owner"),
        ("${local.names.1}", "owner"),
        ('${{for r in ["roles/owner"] : r => r}}', {"roles/owner": "roles/owner"}),
        ('${[for i, n in local.names : "roles/${n}" if i > 0]}', ["roles/owner"]),
        ("${{for k, v in local.m : v.role => k...}}", {"roles/editor": ["a"]}),
        ('${local.r == "owner" ? "roles/owner" : "roles/viewer"}', "roles/owner"),
        ("${!(1 + 2 * 3 != 7) || false}", True),
        ("${-1}", -1),
        ("${{ (local.r) = 1, q = 2 }}", {"owner": 1, "q": 2}),
    ],
)
def test_constants_are_evaluated_as_terraform_would(raw, value):
    evaluated = hclread.evaluate(raw, SCOPE)
    assert evaluated == value and not hclread.has_unknown(evaluated)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("${var.role}", "${var.role}"),
        ('"roles/${var.name}"', "roles/${var.name}"),
        ('"serviceAccount:${google_service_account.r.email}"', "serviceAccount:${google_service_account.r.email}"),
        ("${local.missing}", "${local.missing}"),
        ("${each.value}", "${each.value}"),  # no `each` in scope: its for_each was not known
        ("${upper(var.x)}", "${upper(var.x)}"),
        ('${join("", ["roles/", var.x])}', '${join("", ["roles/", var.x])}'),
        ('${var.admin ? "roles/owner" : "roles/viewer"}', '${var.admin ? "roles/owner" : "roles/viewer"}'),
        ('${base64decode("cm9sZXMvb3duZXI=")}', '${base64decode("cm9sZXMvb3duZXI=")}'),
        ('"roles/%{if true}owner%{endif}"', "roles/%{if true}owner%{endif}"),  # directives: not evaluated
        ('"${~ "roles/owner" ~}"', '${~ "roles/owner" ~}'),  # nor strip markers
        ("${[for r in var.roles : r]}", "${[for r in var.roles : r]}"),
        ("${var.x[*].role}", "${var.x[*].role}"),
        ('${{for r in ["a", "a"] : r => r}}', '${{for r in ["a", "a"] : r => r}}'),  # a repeated key without `...`
        ('"x${[1]}"', "x${[1]}"),  # a list in a template: Terraform refuses it
    ],
)
def test_what_lint_cannot_know_is_unknown_with_its_text(raw, text):
    evaluated = hclread.evaluate(raw, SCOPE)
    assert isinstance(evaluated, hclread.Unknown) and evaluated == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("roles/owner", "roles/owner"),
        ('roles/${"owner"}', "roles/owner"),
        ("roles/${local.r}", "roles/owner"),
        ("${local.names}", ["viewer", "owner"]),
        ("a\\n $${x}", "a\\n ${x}"),  # JSON has decoded the escapes; the template has none of its own
        ("EOT\nroles/${local.r}\nEOT", "EOT\nroles/owner\nEOT"),  # the heredoc marker never ends it early
    ],
)
def test_a_json_string_is_a_template(text, value):
    assert hclread.evaluate(hclread.Template(text), SCOPE) == value


def test_evaluation_is_bounded():
    """Locals that double a string or a list forty times, or `for` expressions nested over a large list, give
    Unknown within the budget instead of hanging lint."""
    doubled = {"a0": '"x"', **{f"a{i}": f'"${{local.a{i - 1}}}${{local.a{i - 1}}}"' for i in range(1, 41)}}
    shared = {"b0": '["x"]', **{f"b{i}": f"[local.b{i - 1}, local.b{i - 1}]" for i in range(1, 41)}}
    locals_ = "locals {\n" + "".join(f"  {k} = {v}\n" for k, v in {**doubled, **shared}.items()) + "}\n"
    locals_ += "locals {\n  big = [" + ", ".join(['"x"'] * 3000) + "]\n}\n"
    grants = "".join(
        f'resource "google_project_iam_member" "{n}" {{\n  project = "p"\n  member = "user:a@b.c"\n  role = {r}\n}}\n'
        for n, r in [
            ("s", '"roles/${local.a40}"'),
            ("l", 'join("", flatten(local.b40))'),
            ("f", 'length([for a in local.big : [for b in local.big : b]]) > 0 ? "roles/owner" : "x"'),
        ]
    )
    facts = policy.facts_from_hcl({"main.tf": locals_ + grants})
    assert all(isinstance(f.attrs["role"], hclread.Unknown) for f in facts)
    assert [f.rule for f in policy.check(facts)] == ["role-is-constant"] * 3


def test_a_local_naming_itself_is_unknown():
    text = 'locals {\n  a = local.b\n  b = "${local.a}x"\n}\n' + _grant_of("local.a")
    assert [f.rule for f in policy.check(policy.facts_from_hcl({"main.tf": text}))] == ["role-is-constant"]


def _grant_of(role: str) -> str:
    return (
        f'resource "google_project_iam_member" "m" {{\n  project = "p"\n  member = "user:a@b.c"\n  role = {role}\n}}\n'
    )


def test_a_large_file_the_fast_parser_cannot_read_is_refused_not_waited_on():
    """#22: a 2 MB file forced onto python-hcl2 (one exponent the grammar misreads) took 17 s and 672 MB."""
    import pytest

    from dataform_infra import hclread

    big = "locals {\n  n = 1e3\n}\n" + "".join(f'resource "x" "r{i}" {{\n  a = "{i}"\n}}\n' for i in range(20_000))
    assert len(big) > hclread.MAX_SLOW_PARSE_BYTES
    with pytest.raises(ValueError, match="too large for the fallback reader"):
        hclread.read(big)
