"""The peer measurement: the same staging + prod stacks, synthesized with CDK Terrain (cdktn, the
maintained fork of CDK for Terraform) in Python.

    python bench/peer_cdktn.py OUT_DIR        (needs `pip install '.[bench-peer]'` and Node.js)

Every resource dfinfra renders for the shipped environments becomes the same construct here (values
written as literals, as a hand-written CDK app would after looking them up), so `bench/run.py` can time
both tools on the same work, side by side, in one run.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def synth(out: Path) -> int:
    from cdktn import App, GcsBackend, TerraformStack
    from cdktn_provider_google.bigquery_dataset import BigqueryDataset
    from cdktn_provider_google.bigquery_dataset_iam_member import BigqueryDatasetIamMember
    from cdktn_provider_google.dataform_repository import DataformRepository
    from cdktn_provider_google.dataform_repository_iam_member import DataformRepositoryIamMember
    from cdktn_provider_google.project_iam_member import ProjectIamMember
    from cdktn_provider_google.project_service import ProjectService
    from cdktn_provider_google.provider import GoogleProvider
    from cdktn_provider_google.secret_manager_secret import SecretManagerSecret
    from cdktn_provider_google.secret_manager_secret_iam_member import SecretManagerSecretIamMember
    from cdktn_provider_google.service_account import ServiceAccount
    from cdktn_provider_google.service_account_iam_member import ServiceAccountIamMember
    from cdktn_provider_google_beta.google_dataform_repository_release_config import (
        GoogleDataformRepositoryReleaseConfig,
    )
    from cdktn_provider_google_beta.google_dataform_repository_workflow_config import (
        GoogleDataformRepositoryWorkflowConfig,
    )
    from cdktn_provider_google_beta.provider import GoogleBetaProvider

    from dataform_infra.specset import SpecSet

    specs = SpecSet(HERE.parent / "environments")
    top = specs.topology
    members = {
        "google_service_account_iam_member": ServiceAccountIamMember,
        "google_project_iam_member": ProjectIamMember,
        "google_bigquery_dataset_iam_member": BigqueryDatasetIamMember,
        "google_secret_manager_secret_iam_member": SecretManagerSecretIamMember,
        "google_dataform_repository_iam_member": DataformRepositoryIamMember,
    }
    app = App(outdir=str(out))
    count = 0
    for env_name in top.apply_order():
        module = specs.module(env_name)
        env = module.env
        stack = TerraformStack(app, env_name)
        GcsBackend(stack, bucket=env.state.bucket, prefix=env.state.prefix)
        GoogleProvider(stack, "google", project=env.project.id, region=env.region, default_labels=env.labels)
        GoogleBetaProvider(stack, "google-beta", project=env.project.id, region=env.region)
        for api in module.apis:
            ProjectService(stack, api.name, project=api.project, service=api.service, disable_on_destroy=False)
        for sa in module.service_accounts:
            ServiceAccount(stack, sa.name, project=sa.project, account_id=sa.account_id, display_name=sa.display_name)
        for ds in module.datasets:
            BigqueryDataset(stack, ds.name, project=ds.project, dataset_id=ds.dataset_id, location=ds.location)
        for grant in module.grants:
            scope = grant.resource
            target = {
                "service_account": {"service_account_id": f"projects/{scope.project}/serviceAccounts/{scope.id}"},
                "project": {"project": scope.project},
                "dataset": {"project": scope.project, "dataset_id": scope.id},
                "secret": {"secret_id": f"projects/{scope.project}/secrets/{scope.id}"},
                "repository": {"project": scope.project, "region": scope.region, "repository": scope.id},
            }[scope.kind]
            members[grant.resource_type](stack, grant.name, role=grant.role, member=grant.principal.member, **target)
        for secret in module.secrets:
            SecretManagerSecret(
                stack, secret.name, project=secret.project, secret_id=secret.secret_id, replication={"auto": {}}
            )
        for view in module.repositories:
            hosted = view.hosted
            DataformRepository(
                stack,
                view.name,
                project=hosted.project,
                region=hosted.region,
                name=hosted.name,
                git_remote_settings={
                    "url": view.url,
                    "default_branch": view.default_branch,
                    "authentication_token_secret_version": f"{hosted.secret_name}/versions/latest",
                },
            )
        for rc in module.releases:
            c = rc.release.compilation
            GoogleDataformRepositoryReleaseConfig(
                stack,
                rc.name,
                project=rc.home.project,
                region=rc.home.region,
                repository=rc.home.name,
                name=rc.release.name,
                git_commitish=rc.release.git_ref,
                cron_schedule=rc.release.cron,
                time_zone=rc.release.time_zone,
                code_compilation_config={
                    "default_database": rc.database,
                    "default_location": rc.location,
                    "default_schema": c.schema_,
                    "assertion_schema": c.assertion_schema,
                    "vars": dict(c.vars),
                },
            )
        for wc in module.workflows:
            wf = wc.workflow
            GoogleDataformRepositoryWorkflowConfig(
                stack,
                wc.name,
                project=wc.home.project,
                region=wc.home.region,
                repository=wc.home.name,
                name=wf.name,
                release_config=f"projects/{wc.home.project}/locations/{wc.home.region}/repositories/{wc.home.name}"
                f"/releaseConfigs/{wf.release}",
                cron_schedule=wf.cron,
                time_zone=wf.time_zone,
                invocation_config={
                    "service_account": top.runner(env_name, wf.runner).email,
                    "included_tags": list(wf.tags),
                    "transitive_dependencies_included": wf.include_dependencies,
                },
            )
        count += 1
    app.synth()
    return count


if __name__ == "__main__":
    stacks = synth(Path(sys.argv[1]))
    print(f"synthesized {stacks} stacks into {sys.argv[1]}")
