"""Running terraform on the rendered modules with the guards a production tool needs.

`core` (the `Lifecycle`: plan, apply, destroy and the pass-through for the selected environments), `bookkeeping`
(the saved plan and what it was planned from, the init stamp), `guards` (what stands between a plan and Google
Cloud), `order` (host first; targets first on destroy), `bootstrap` (the state bucket).
"""

from dataform_infra.lifecycle.core import APPLY, PROPAGATION_ENV, Lifecycle, PlanOutcome
from dataform_infra.lifecycle.guards import NOT_PASSED_THROUGH, STATE_WRITERS
from dataform_infra.lifecycle.order import apply_order

__all__ = ["APPLY", "NOT_PASSED_THROUGH", "PROPAGATION_ENV", "STATE_WRITERS", "Lifecycle", "PlanOutcome", "apply_order"]
