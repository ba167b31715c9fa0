from pathlib import Path

import pytest

from dataform_infra.errors import SpecError
from dataform_infra.spec.yamlsource import MAX_SPEC_BYTES, load_yaml, parse_yaml

F = Path("env.yaml")


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_yaml(text, F)
    assert len(info.value.problems) == 1
    return info.value.problems[0].describe()


def test_records_the_line_of_every_field():
    doc = parse_yaml("a: 1\nb:\n  c: x\n  d:\n    - 1\n    - e: 2\n", F)
    assert doc.data == {"a": 1, "b": {"c": "x", "d": [1, {"e": 2}]}}
    assert doc.lines[("a",)] == 1
    assert doc.lines[("b", "c")] == 3
    assert doc.lines[("b", "d", 1, "e")] == 6
    # A missing field is located at its closest existing parent.
    assert doc.line_of(("b", "d", 1, "missing")) == 6


def test_duplicate_keys_name_both_lines():
    assert error_of("a: 1\nb: 2\na: 3\n") == "env.yaml:3: duplicate key 'a' (first defined on line 1)"


def test_nested_duplicate_key_names_the_parent_path():
    message = error_of("x:\n  - y: 1\n    y: 2\n")
    assert message.startswith("env.yaml:3: x[0]: duplicate key 'y'")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &x [1, 2]\nb: *x\n", "aliases"),
        ("a: &x {k: 1}\nb:\n  <<: *x\n", "merge keys"),
        ("a: [1, 2\n", "invalid YAML"),
        ("a:\n\t- b\n", "invalid YAML"),
        ("- 1\n- 2\n", "mapping of fields at the top level"),
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("a: 1\n---\nb: 2\n", "several YAML documents"),
        ("? [a, b]\n: 1\n", "plain strings"),
        ("a: !!python/object:os.system x\n", "invalid"),
        ("a: \x00\n", "NUL"),
    ],
)
def test_malformed_yaml_is_one_clear_error(text, expected):
    assert expected in error_of(text)


def test_alias_bomb_is_refused_quickly():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    assert "aliases" in error_of(bomb)


def test_deep_nesting_is_refused():
    assert "nested deeper" in error_of("a: " + "[" * 100 + "]" * 100 + "\n")


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: 1\nb: \xff\xfe\n")
    with pytest.raises(SpecError) as info:
        load_yaml(path)
    assert info.value.problems[0].line == 2
    assert "not valid UTF-8" in info.value.problems[0].message


def test_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * MAX_SPEC_BYTES + "\n")
    with pytest.raises(SpecError, match="at most"):
        load_yaml(path)
