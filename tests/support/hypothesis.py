"""How many examples the property tests draw: 100 in the inner loop, 1,000 where `CI` is set (`.ci/run`),
or `DFINFRA_HYPOTHESIS_EXAMPLES` for a longer hunt. Derandomized, so a failure reproduces."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("DFINFRA_HYPOTHESIS_EXAMPLES") or (1000 if os.environ.get("CI") else 100))


def examples(fraction: float = 1.0) -> settings:
    """Settings for a property test that draws `fraction` of EXAMPLES (a slower property draws fewer)."""
    return settings(
        max_examples=max(10, int(EXAMPLES * fraction)),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
