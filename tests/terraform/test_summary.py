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
    assert summary.counts == {"create": 2, "update": 1, "replace": 1, "delete": 2, "forget": 0}
    assert summary.by_type()["google_service_account"] == {"create": 1, "replace": 1}
    assert summary.steps == 7  # the replacement is a destruction plus a creation


def test_destructive_changes_are_the_stateful_deletes_and_replaces():
    assert [c.address for c in summarise(PLAN).destructive] == [
        "google_service_account.b",
        "google_dataform_repository.this",
    ]


def test_a_destroy_forgets_what_was_adopted_and_says_so():
    """#24: deletions of adopted objects (`existing: true`) are shown as forgotten, and are not destructive."""
    destroy = {"resource_changes": [c for c in PLAN["resource_changes"] if c["change"]["actions"] == ["delete"]]}
    summary = summarise(destroy).forgetting({"google_dataform_repository.this"})
    assert summary.forgotten() == ["google_dataform_repository.this"]
    assert summary.destructive == [] and summary.counts["delete"] == 1 and summary.counts["forget"] == 1
    text = summary.describe()
    assert "1 to delete, 1 to forget." in text and "  . forget google_dataform_repository.this" in text
    assert "Forgotten, not deleted (adopted with `existing: true`" in text


def test_iam_changes_read_as_principal_role_resource():
    iam = [(i.action, i.principal, i.role, i.resource) for i in summarise(PLAN).iam]
    assert iam == [
        ("grant", "user:a@b.com", "roles/iam.serviceAccountUser", "(known after apply)"),
        ("revoke", "serviceAccount:x@p.iam.gserviceaccount.com", "roles/bigquery.jobUser", "p"),
    ]
    text = summarise(PLAN).describe()
    assert "+ user:a@b.com -> roles/iam.serviceAccountUser -> (known after apply)" in text
    assert "!! DELETE google_dataform_repository.this" in text


def test_no_changes():
    assert summarise({"resource_changes": []}).describe().startswith("No changes")


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
    text = summary.describe()
    assert text.startswith("Plan: 1 to move, 0 to create")
    assert "-> move google_dataform_repository.this to google_dataform_repository.analytics" in text
    assert not summarise({"resource_changes": [change("x.y", "x", ["no-op"])]}).has_changes


def test_nested_blocks_diff_attribute_by_attribute_and_only_marked_values_are_sensitive():
    """#22: a workflow's tags changed invisibly as `(sensitive) -> (sensitive)`."""
    before = {"invocation_config": [{"included_tags": ["daily"], "service_account": "r@p.iam.gserviceaccount.com"}]}
    after = {
        "invocation_config": [{"included_tags": ["daily", "revenue"], "service_account": "r@p.iam.gserviceaccount.com"}]
    }
    workflow = change(
        "google_dataform_repository_workflow_config.w",
        "google_dataform_repository_workflow_config",
        ["update"],
        before=before,
        after=after,
    )
    workflow["change"] |= {
        "before_sensitive": {"invocation_config": [{}]},
        "after_sensitive": {"invocation_config": [{}]},
    }
    secret = change(
        "google_dataform_repository.r",
        "google_dataform_repository",
        ["update"],
        before={"git_remote_settings": [{"url": "a", "token": "old"}]},
        after={"git_remote_settings": [{"url": "b", "token": "new"}]},
    )
    secret["change"] |= {"after_sensitive": {"git_remote_settings": [{"token": True}]}}
    summary = summarise({"resource_changes": [workflow, secret]})
    text = summary.describe()
    assert 'invocation_config.included_tags: ["daily"] -> ["daily", "revenue"]' in text
    assert "service_account" not in text  # unchanged attributes stay out
    assert 'git_remote_settings.url: "a" -> "b"' in text
    assert "git_remote_settings.token: (sensitive) -> (sensitive)" in text
    assert "old" not in text and "new" not in text


def test_every_create_and_delete_is_named_and_drift_and_outputs_are_shown():
    plan = {
        **PLAN,
        "resource_drift": [change("google_bigquery_dataset.d", "google_bigquery_dataset", ["update"])],
        "output_changes": {
            "repository_id": {"actions": ["create"], "before": None, "after": None, "after_unknown": True},
            "same": {"actions": ["no-op"], "before": "x", "after": "x"},
        },
    }
    summary = summarise(plan, labels={"google_service_account.a": "service account a@p.iam.gserviceaccount.com"})
    text = summary.describe()
    assert "  + create google_service_account.a (service account a@p.iam.gserviceaccount.com)" in text
    assert "  - delete google_dataform_repository.this" in text
    assert "Changed outside Terraform since the last apply" in text and "~ update google_bigquery_dataset.d" in text
    assert "Outputs:\n  + repository_id: null -> (known after apply)" in text
    assert "same" not in text
    assert summary.to_dict()["outputs"] == [
        {"name": "repository_id", "action": "create", "before": "null", "after": "(known after apply)"}
    ]


def test_revoked_members_from_state_cannot_forge_a_line_of_the_plan():
    forged = "user:a@b.com\n  + serviceAccount:x -> roles/owner -> project p"
    plan = {
        "resource_changes": [
            change(
                "google_project_iam_member.hand",
                "google_project_iam_member",
                ["delete"],
                before={"role": "roles/viewer", "member": forged, "project": "p"},
            )
        ]
    }
    text = summarise(plan).describe()
    assert "\n  + serviceAccount:x" not in text and '"user:a@b.com\\n  + serviceAccount:x' in text


def test_a_forget_action_and_what_a_replan_adds_beyond_the_reviewed_plan():
    forgotten = change("google_service_account.old", "google_service_account", ["forget"])
    summary = summarise({"resource_changes": [forgotten]})
    assert "forget google_service_account.old" in summary.describe()  # terraform 1.7+'s `removed` blocks
    reviewed = summarise(PLAN)
    replanned = summarise({**PLAN, "output_changes": {"x": {"actions": ["create"], "before": None, "after": 1}}})
    assert [c.address for c in replanned.beyond(reviewed)] == ["output.x"]
    assert reviewed.beyond(reviewed) == []


def test_a_revoked_access_list_entry_is_named_from_its_values():
    """#24 review: an entry dfinfra no longer renders still shows who loses what on which dataset."""
    plan = {
        "resource_changes": [
            change(
                "google_bigquery_dataset_access.old",
                "google_bigquery_dataset_access",
                ["delete"],
                before={
                    "project": "p",
                    "dataset_id": "marts",
                    "role": "READER",
                    "user_by_email": "etl@p.iam.gserviceaccount.com",
                },
            ),
            change(
                "google_bigquery_dataset_access.auth",
                "google_bigquery_dataset_access",
                ["delete"],
                before={
                    "project": "p",
                    "dataset_id": "marts",
                    "dataset": [{"dataset": [{"project_id": "p", "dataset_id": "rep"}]}],
                },
            ),
        ]
    }
    iam = [(i.action, i.principal, i.role, i.resource) for i in summarise(plan).iam]
    assert iam == [
        ("revoke", "serviceAccount:etl@p.iam.gserviceaccount.com", "roles/bigquery.dataViewer", "marts"),
        ("revoke", "views of dataset p.rep", "authorized views", "marts"),
    ]
