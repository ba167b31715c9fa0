"""The offline cloud's Cloud Logging filter evaluator and Workflows interpreter, on their own: the e2e tests trust
them to fail where Google fails, so each is held to the language's documented behaviour here."""

from __future__ import annotations

import pytest

from tests.fakegcp.events import WorkflowError, _Expressions
from tests.fakegcp.logfilter import FilterError, matches

ENTRY = {
    "logName": "projects/p/logs/dataform.googleapis.com%2Fworkflow_invocation_completion",
    "resource": {"type": "dataform.googleapis.com/Repository", "labels": {"repository_id": "analytics"}},
    "jsonPayload": {"terminalState": "FAILED", "workflowConfigId": 'say "hi"\\now'},
    "severity": "INFO",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('jsonPayload.terminalState="FAILED"', True),
        ('jsonPayload.terminalState="SUCCEEDED"', False),
        ('jsonPayload.terminalState!="SUCCEEDED"', True),
        ('jsonPayload.terminalState="FAILED" AND severity="ERROR"', False),
        ('jsonPayload.terminalState="FAILED" severity="INFO"', True),  # juxtaposition is AND
        ('severity="ERROR" OR resource.labels.repository_id="analytics"', True),
        # OR binds tighter than AND: (INFO OR ERROR) AND (SUCCEEDED OR FAILED); the usual reading would say False.
        (
            'severity="INFO" OR severity="ERROR" AND jsonPayload.terminalState="X" OR '
            'jsonPayload.terminalState="FAILED"',
            True,
        ),
        ('severity="ERROR" OR severity="X" AND jsonPayload.terminalState="FAILED"', False),
        ('NOT severity="INFO"', False),
        ('jsonPayload.terminalState=("SUCCEEDED" OR "FAILED")', True),
        ('(severity="ERROR" OR severity="INFO") AND jsonPayload.terminalState="FAILED"', True),
        ('resource.type:"repository"', True),  # has: a case-blind substring
        ('jsonPayload.missing="x"', False),
        ('jsonPayload.missing!="x"', True),
        (r'jsonPayload.workflowConfigId="say \"hi\"\\now"', True),  # escapes are read, not compared raw
        ('jsonPayload.workflowConfigId="say "', False),
    ],
)
def test_the_filter_language_is_read_as_logging_reads_it(text, expected):
    assert matches(text, ENTRY) is expected


@pytest.mark.parametrize("text", ['severity="INFO" AND', '(severity="INFO"', "severity", 'severity=("a" "b")', '"x'])
def test_a_malformed_filter_is_an_error_not_a_match(text):
    with pytest.raises(FilterError):
        matches(text, ENTRY)


def test_workflow_expressions_read_variables_functions_and_fail_on_unknown_names():
    expressions = _Expressions({"event": {"data": {"name": "exports/daily/x.csv"}}}, {"OBJECT_PREFIX": "exports/"})
    assert expressions.value('${sys.get_env("OBJECT_PREFIX")}') == "exports/"
    assert expressions.value('${text.substring(event.data.name, 0, 8) == "exports/"}') is True
    assert expressions.value('${"a" + "b"}') == "ab"
    assert expressions.value("${len(event.data.name) < 3 or not true}") is False
    assert expressions.value({"k": ["${event.data.name}"]}) == {"k": ["exports/daily/x.csv"]}
    with pytest.raises(WorkflowError, match="variable nope not found"):
        expressions.value("${nope}")
    with pytest.raises(WorkflowError, match="key not found: size"):
        expressions.value("${event.data.size}")
    with pytest.raises(WorkflowError, match="TypeError"):
        expressions.value('${"a" + 1}')
    with pytest.raises(WorkflowError, match="unknown function"):
        expressions.value('${http.get("x")}')
