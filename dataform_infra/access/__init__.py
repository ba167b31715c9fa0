"""The runtime access model: what each Dataform run needs, and the proof that the grants provide it."""

from dataform_infra.access import verdict
from dataform_infra.access.coverage import Coverage, cover
from dataform_infra.access.model import CHAINS, OPEN_FACTS, AccessModel, Requirement, Run

__all__ = ["CHAINS", "OPEN_FACTS", "AccessModel", "Coverage", "Requirement", "Run", "cover", "verdict"]
