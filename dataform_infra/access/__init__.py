"""The runtime access model: what each Dataform run needs, and the proof that the grants provide it.

`model` derives requirements from the spec, `coverage` proves grants against them with Google's role
table (`roles`); `policy/verdict.py` turns the proof into `validate` findings.
"""

from dataform_infra.access.coverage import Coverage, cover
from dataform_infra.access.model import CHAINS, OPEN_FACTS, AccessModel, Requirement, Run

__all__ = ["CHAINS", "OPEN_FACTS", "AccessModel", "Coverage", "Requirement", "Run", "cover"]
