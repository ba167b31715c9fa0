from dataform_infra.terraform.summary import summarise


def change(address, type_, actions, before=None, after=None, after_unknown=None, mode="managed"):
    return {
        "address": address,
        "type": type_,
        "mode": mode,
        "change": {"actions": actions, "before": before, "after": after, "after_unknown": after_unknown or {}},
    }


PLAN = {
    "resource_changes": [
        change("google_service_account.a", "google_service_account", ["create"], after={"account_id": "a"}),
        change("google_service_account.b", "google_service_account", ["delete", "create"]),
        change("google_bigquery_dataset.d", "google_bigquery_dataset", ["update"]),
        change("google_dataform_repository.this", "google_dataform_repository", ["delete"]),
        change("google_project_service.x", "google_project_service", ["no-op"]),
        change("data.google_project.p", "google_project", ["read"], mode="data"),
        change(
            "google_service_account_iam_member.m",
            "google_service_account_iam_member",
            ["create"],
            after={"role": "roles/iam.serviceAccountUser", "member": "user:a@b.com"},
            after_unknown={"service_account_id": True},
        ),
        change(
            "google_project_iam_member.old",
            "google_project_iam_member",
            ["delete"],
            before={
                "role": "roles/bigquery.jobUser",
                "member": "serviceAccount:x@p.iam.gserviceaccount.com",
                "project": "p",
            },
        ),
    ]
}


def test_counts_and_types():
    summary = summarise(PLAN)
    assert summary.counts == {"create": 2, "update": 1, "replace": 1, "delete": 2}
    assert summary.by_type()["google_service_account"] == {"create": 1, "replace": 1}
    assert summary.steps == 7  # the replacement is a destruction plus a creation


def test_destructive_changes_are_the_stateful_deletes_and_replaces():
    assert [c.address for c in summarise(PLAN).destructive] == [
        "google_service_account.b",
        "google_dataform_repository.this",
    ]


def test_iam_changes_read_as_principal_role_resource():
    iam = [(i.action, i.principal, i.role, i.resource) for i in summarise(PLAN).iam]
    assert iam == [
        ("grant", "user:a@b.com", "roles/iam.serviceAccountUser", "(known after apply)"),
        ("revoke", "serviceAccount:x@p.iam.gserviceaccount.com", "roles/bigquery.jobUser", "p"),
    ]
    text = summarise(PLAN).render()
    assert "+ user:a@b.com -> roles/iam.serviceAccountUser -> (known after apply)" in text
    assert "!! DELETE google_dataform_repository.this" in text


def test_no_changes():
    assert summarise({"resource_changes": []}).render().startswith("No changes")


def test_a_plan_that_only_moves_state_entries_is_a_change_to_apply():
    """`moved` blocks plan as no-ops with a previous address: nothing is replaced, yet only an apply records the
    new names, so the plan has changes and says what moves."""
    moved = change("google_dataform_repository.analytics", "google_dataform_repository", ["no-op"])
    moved["previous_address"] = "google_dataform_repository.this"
    summary = summarise({"resource_changes": [moved]})
    assert summary.has_changes and not summary.changes and not summary.destructive
    assert summary.to_dict()["moves"] == [
        {"from": "google_dataform_repository.this", "to": "google_dataform_repository.analytics"}
    ]
    text = summary.render()
    assert text.startswith("Plan: 1 to move, 0 to create")
    assert "-> move google_dataform_repository.this to google_dataform_repository.analytics" in text
    assert not summarise({"resource_changes": [change("x.y", "x", ["no-op"])]}).has_changes
