"""The comment that records an opt-in to a broad BigQuery role in the HCL, one marker per scope the spec
can opt in at. The renderer writes it above the grant; `lint` accepts a broad role only under the marker
of its own scope (a dataset-scoped Data Owner cannot be justified with the project-wide marker)."""

from __future__ import annotations

# resource kind of the grant -> the marker its justification comment starts with
OPT_IN_MARKERS = {"project": "Project-wide opt-in", "dataset": "Dataset owner opt-in"}
# The comment in a config that attaches a runner made elsewhere (`Runner.email`): the grants on that account
# are its owner's, so `lint` does not ask this module for them.
MADE_ELSEWHERE = "Runner made elsewhere"
# The spec asks a reason at least this long; a comment's reason must be as real.
MIN_REASON = 10
