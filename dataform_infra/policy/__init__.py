"""Least privilege, checked before anything is applied.

`rules` (each rule registered with its id and summary by `@rule`), `facts` (what the rules read: from the
view-models the templates print, for `validate`), `lint` (the same facts from any `.tf` files, read as Terraform
reads them) and `verdict` (the access model's proof turned into `validate` findings; imported where needed, as it
loads the spec).
"""

from dataform_infra.policy.facts import Fact, Finding, facts_from_module
from dataform_infra.policy.lint import LINT_MAX_BYTES, facts_from_hcl, lint
from dataform_infra.policy.rules import IAM_ADMIN_ROLES, IMPERSONATION_ROLES, RULES, Rule, _iam_power, check, rule

__all__ = [
    "IAM_ADMIN_ROLES",
    "IMPERSONATION_ROLES",
    "LINT_MAX_BYTES",
    "RULES",
    "Fact",
    "Finding",
    "Rule",
    "_iam_power",
    "check",
    "facts_from_hcl",
    "facts_from_module",
    "lint",
    "rule",
]
