"""Running terraform on the rendered modules with the guards a production tool needs.

`core` (the `Lifecycle`: plan, apply, destroy and the pass-through for the selected environments), `bookkeeping`
(the saved plan and what it was planned from, the init stamp), `guards` (what stands between a plan and Google
Cloud), `order` (host first; targets first on destroy), `bootstrap` (the state bucket).
"""

from dataform_infra.lifecycle.core import Lifecycle
from dataform_infra.lifecycle.order import apply_order

__all__ = ["Lifecycle", "apply_order"]
