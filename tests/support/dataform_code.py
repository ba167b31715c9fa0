"""The Dataform code each example's repository holds, as the offline cloud compiles it (`git_code`).

Hand-written, like a team's repository: what each action writes (by default the compilation's
schema, or the schema it names), what it reads straight from a source dataset, and its tags. Each
story matches its spec set: the datasets a run writes and reads are the ones the spec declares, and
every tag selects a model and its assertion (the access model's `selection` assumption).
"""

from __future__ import annotations

from typing import Any


def _table(name: str, tags: list[str], reads: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "table", "tags": tags, "reads": reads, "dependencies": [], "schema": None, **extra}


def _assertion(name: str, tags: list[str], on: str) -> dict[str, Any]:
    return {"name": name, "type": "assertion", "tags": tags, "reads": [], "dependencies": [on], "schema": None}


def _code(default: str, assertions: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "workflow_settings": {"defaultDataset": default, "defaultAssertionDataset": assertions},
        "actions": actions,
    }


CODE: dict[str, dict[str, Any]] = {  # spec set -> its code (or repository name -> code)
    # staging/prod: one daily model over raw_events and its assertion.
    "shipped": _code(
        "marts",
        "dataform_assertions",
        [_table("orders", ["daily"], ["raw_events"]), _assertion("orders_unique", ["daily"], "orders")],
    ),
    # Two repositories, two teams' code (a repository name -> its code): models and campaigns over events.
    "multi-repository": {
        "analytics": _code(
            "models",
            "dataform_assertions",
            [_table("sessions", ["daily"], ["events"]), _assertion("sessions_unique", ["daily"], "sessions")],
        ),
        "marketing": _code(
            "campaigns",
            "dataform_assertions",
            [_table("attribution", [], ["events"]), _assertion("attribution_complete", [], "attribution")],
        ),
    },
    # One repository's code in each of dev, test and prod: a daily model over the landing zone's files and
    # its assertion, a BigLake table through the environment's connection, documentation checks over the CRM
    # team's table names that only dev runs, and a reporting table the BI team's account refreshes in prod only,
    # over a view in reporting that reads the model (the warehouse authorizes reporting's views).
    "platform-team": _code(
        "warehouse",
        "warehouse_assertions",
        [
            _table("orders", ["daily"], [], reads_objects=["acme-plat-landing"]),
            # A BigLake table over the lake, through each project's own `eu.biglake` connection.
            _table("lake_events", ["daily"], [], uses_connections=["eu.biglake"]),
            _assertion("orders_unique", ["daily"], "orders"),
            # What prod's landing triggers run: a batch from the landing zone, through the lake's connection.
            _table(
                "landed_batches", ["landing"], [], reads_objects=["acme-plat-landing"], uses_connections=["eu.biglake"]
            ),
            _assertion("landed_batches_complete", ["landing"], "landed_batches"),
            _table("crm_columns", ["docs"], [], reads_metadata=["acme-crm.crm_exports"]),
            _table("orders_view", ["reporting"], [], schema="reporting", type="view", dependencies=["orders"]),
            _table("daily_revenue", ["reporting"], [], schema="reporting", dependencies=["orders_view"]),
        ],
    ),
    "single-project": _code(
        "analytics",
        "dataform_assertions",
        [_table("orders", [], ["sources", "acme-crm-prod.crm_exports"]), _assertion("orders_unique", [], "orders")],
    ),
    "ssh-repository": _code(
        "warehouse",
        "warehouse_assertions",
        [_table("facts", [], ["landing"]), _assertion("facts_complete", [], "facts")],
    ),
    # Hourly, daily and finance models over `ingest`, and two reporting tables only prod refreshes.
    "three-environments": _code(
        "dwh",
        "dwh_assertions",
        [
            _table("events_hourly", ["hourly"], ["ingest"]),
            _assertion("events_fresh", ["hourly"], "events_hourly"),
            _table("orders", ["daily"], ["ingest"], dependencies=["events_hourly"]),
            _assertion("orders_unique", ["daily"], "orders"),
            _table("finance_ledger", ["finance"], ["ingest"], type="incremental", dependencies=["orders"]),
            _assertion("ledger_balanced", ["finance"], "finance_ledger"),
            _table("daily_revenue", ["reporting"], ["ingest"], schema="reporting", dependencies=["orders"]),
            _table("active_users", ["reporting"], ["ingest"], schema="reporting", dependencies=["events_hourly"]),
        ],
    ),
    # What `dfinfra init` scaffolds: one model and its assertion, no source reads.
    "init": _code(
        "marts", "dataform_assertions", [_table("orders", [], []), _assertion("orders_unique", [], "orders")]
    ),
}


def workspace_code(default: str, assertions: str) -> dict[str, Any]:
    """A repository whose one model reads nothing: what a workspace run writes depends only on its overrides."""
    return _code(default, assertions, [_table("orders", [], []), _assertion("orders_unique", [], "orders")])
